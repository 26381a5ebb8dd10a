// PostgreSQL from Debian, run by the postgresql template's scripts under real Vigil daemons, each node
// in its own network and mount namespace; a client commits through the VIP.
import { createPostgres } from '../helpers/app-dbs.ts';
import { mirrorTemplateSuite } from '../helpers/app-mirror-suite.ts';

mirrorTemplateSuite('postgresql', () => createPostgres('vgapg', '198.18.60'));
