// MariaDB from Debian, run by the mariadb template's scripts under real Vigil daemons, each node in its
// own network and mount namespace; a client commits through the VIP.
import { createMariadb } from '../helpers/app-dbs.ts';
import { mirrorTemplateSuite } from '../helpers/app-mirror-suite.ts';

mirrorTemplateSuite('mariadb', () => createMariadb('vgamy', '198.18.61'));
