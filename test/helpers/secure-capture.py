"""python3 secure-capture.py IFACE OUT: captures every frame seen on IFACE (an AF_PACKET socket: what
tcpdump would see) into OUT as <u32 length><frame> records, until SIGTERM. Prints "ready" once
listening, and at the end "drops N": frames the kernel could not queue (a capture that missed
frames proves nothing)."""
import signal, socket, struct, sys

iface, out = sys.argv[1], sys.argv[2]
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root): room for bursts of 64 KiB segments
s.bind((iface, 0))
s.getsockopt(263, 6, 8)  # PACKET_STATISTICS: reading resets the counters
s.settimeout(0.1)
print('ready', flush=True)
with open(out, 'wb') as f:
    while not stop:
        try:
            frame = s.recv(262144)
        except socket.timeout:
            continue
        f.write(len(frame).to_bytes(4, 'big') + frame)
packets, drops = struct.unpack('II', s.getsockopt(263, 6, 8))
print(f'drops {drops}', flush=True)
