export interface ConfigIssue {
  /** key path, e.g. modules[0].heartbeat.timeout ("" for the whole file) */
  readonly path: string;
  readonly message: string;
}

/** Every problem found in one configuration file, reported together so an operator fixes them in one pass. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(issues.map((i) => `${file}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatPath(path: readonly (string | number)[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}
