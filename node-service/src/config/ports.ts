/** Ports derived from a module id: the contract formula is declared once, in contract/health.ts. */
export { modulePorts, type ModulePorts } from '../contract/health.ts';
