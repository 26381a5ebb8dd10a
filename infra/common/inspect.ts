/**
 * Helpers to read generated templates back (tests, and operators checking what a node will get):
 * flattens CloudFormation `Fn::Join` / `Fn::Base64` values into text, putting a placeholder where a
 * deploy-time value (Ref, GetAtt, ...) stands.
 */
export function cfnText(value: unknown, placeholder: (v: unknown) => string = () => 'DEPLOY_TIME_VALUE'): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if ('Fn::Base64' in o) return cfnText(o['Fn::Base64'], placeholder);
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map((p) => cfnText(p, placeholder)).join(sep);
    }
  }
  return placeholder(value);
}
