export { listTemplates, loadTemplate, TEMPLATES_DIR, type Template, type TemplateParam } from './catalog.ts';
export { newModule, resolveParams, substitute, type NewModule, type NewModuleOptions } from './instantiate.ts';
export { withModule, writeConfig } from './add-to-config.ts';
