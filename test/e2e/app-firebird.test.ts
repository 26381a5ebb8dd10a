// Firebird 3 from Debian, run by the firebird template's scripts under real Vigil daemons, each node in
// its own network and mount namespace; a client commits through the VIP.
import { createFirebird } from '../helpers/app-dbs.ts';
import { mirrorTemplateSuite } from '../helpers/app-mirror-suite.ts';

mirrorTemplateSuite('firebird', () => createFirebird('vgafb', '198.18.64'));
