// A container (PostgreSQL in an image made here with mmdebstrap + podman import) run by the podman
// template under real Vigil daemons, each node in its own network and mount namespace, rootful podman
// with the node's network; a client commits through the VIP.
import { createPodman } from '../helpers/app-dbs.ts';
import { mirrorTemplateSuite } from '../helpers/app-mirror-suite.ts';

// the first run builds the image (mmdebstrap downloads and installs postgresql-15): minutes
mirrorTemplateSuite('podman', () => createPodman('vgapm', '198.18.65'), { setupTimeoutMs: 900_000 });
