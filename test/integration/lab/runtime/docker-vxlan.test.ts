import { dockerSuite } from './docker-suite.js';

dockerSuite('vxlan');
