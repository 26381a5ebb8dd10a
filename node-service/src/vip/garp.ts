import { createRequire } from 'node:module';
import { isIPv4 } from 'node:net';
import { getSystemErrorName } from 'node:util';

/**
 * Gratuitous ARP sent from the daemon itself through a packet socket, as keepalived does
 * (`garp.c`), instead of one `arping` process per packet: every process the daemon starts is a
 * fork() of a process that holds hundreds of MiB once it carries many modules, about 40 ms each on
 * a loaded 2-core machine. 64 modules taking over announced 320 packets and spent 16 s of their
 * event loop forking arping (`npm run soak -- --scale`).
 *
 * The packet is the one `arping -U` sends: an ARP request from the VIP to the VIP, sender hardware
 * address the interface's, target hardware address and link destination broadcast.
 */
const require = createRequire(import.meta.url);

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  close(fd: number): number;
  ifNameToIndex(name: string): number;
  ioctl(fd: number, request: number, arg: Buffer): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: number): number | bigint;
  errno(): number;
}

let libc: Libc | null | undefined;

/** koffi's libc functions, or null where koffi or libc cannot be loaded (then arping is used) */
function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    const koffi = require('koffi') as typeof import('koffi');
    const lib = koffi.load('libc.so.6');
    const ioctl = lib.func('int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)');
    const sendto = lib.func('long sendto(int fd, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t addrlen)');
    libc = {
      socket: lib.func('int socket(int domain, int type, int protocol)'),
      close: lib.func('int close(int fd)'),
      ifNameToIndex: lib.func('unsigned int if_nametoindex(const char *ifname)'),
      ioctl: (fd, request, arg) => ioctl(fd, request, arg),
      sendto: (fd, buf, len, flags, addr, addrLen) => sendto(fd, buf, len, flags, addr, addrLen),
      errno: () => koffi.errno(),
    };
  } catch {
    libc = null;
  }
  return libc;
}

const AF_PACKET = 17;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const ETH_P_ARP = 0x0806;
const ETH_P_IP = 0x0800;
const ARPHRD_ETHER = 1;
const ARPOP_REQUEST = 1;
const SIOCGIFHWADDR = 0x8927;
const IFNAMSIZ = 16;

/** the error code of send() on an interface this socket cannot announce on (InfiniBand, ...): arping can */
export const NOT_ETHERNET = 'ENOTETHER';

/** One AF_PACKET datagram socket for the whole daemon (its network namespace). */
export class GarpSocket {
  private constructor(private readonly c: Libc, private fd: number) {}

  /** undefined when no packet socket can be opened here (no CAP_NET_RAW, no koffi): use arping */
  static open(): GarpSocket | undefined {
    const c = loadLibc();
    if (!c) return undefined;
    const fd = c.socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? undefined : new GarpSocket(c, fd);
  }

  /** Sends one gratuitous ARP for an IPv4 address on an interface; throws with the reason. */
  send(dev: string, addr: string): void {
    if (this.fd < 0) throw new Error('gratuitous ARP socket closed');
    if (!isIPv4(addr)) throw new Error(`${addr} is not an IPv4 address`);
    const ifindex = this.c.ifNameToIndex(dev);
    if (ifindex === 0) throw new Error(`interface ${dev}: ${this.errName()}`);
    const ifr = Buffer.alloc(40);
    ifr.write(dev, 0, IFNAMSIZ - 1, 'utf8');
    if (this.c.ioctl(this.fd, SIOCGIFHWADDR, ifr) < 0) throw new Error(`interface ${dev}: hardware address: ${this.errName()}`);
    if (ifr.readUInt16LE(16) !== ARPHRD_ETHER) throw Object.assign(new Error(`interface ${dev} is not Ethernet (hardware type ${ifr.readUInt16LE(16)})`), { code: NOT_ETHERNET });
    const mac = ifr.subarray(18, 24);
    const ip = Buffer.from(addr.split('.').map(Number));
    const arp = Buffer.alloc(28);
    arp.writeUInt16BE(ARPHRD_ETHER, 0);
    arp.writeUInt16BE(ETH_P_IP, 2);
    arp[4] = 6;
    arp[5] = 4;
    arp.writeUInt16BE(ARPOP_REQUEST, 6);
    mac.copy(arp, 8);
    ip.copy(arp, 14);
    arp.fill(0xff, 18, 24);
    ip.copy(arp, 24);
    // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8]
    const to = Buffer.alloc(20);
    to.writeUInt16LE(AF_PACKET, 0);
    to.writeUInt16BE(ETH_P_ARP, 2);
    to.writeInt32LE(ifindex, 4);
    to[11] = 6;
    to.fill(0xff, 12, 18);
    if (Number(this.c.sendto(this.fd, arp, arp.length, 0, to, to.length)) < 0) throw new Error(`sendto on ${dev}: ${this.errName()}`);
  }

  close(): void {
    if (this.fd >= 0) this.c.close(this.fd);
    this.fd = -1;
  }

  private errName(): string {
    const e = this.c.errno();
    try {
      return getSystemErrorName(-e);
    } catch {
      return `errno ${e}`;
    }
  }
}
