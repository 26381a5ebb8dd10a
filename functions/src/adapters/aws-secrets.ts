/** Secrets Manager at run time (the Lambda execution role may read exactly the cluster's secrets). */
import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

let client: SecretsManagerClient | undefined;

export async function awsSecret(arn: string, stage: 'AWSCURRENT' | 'AWSPREVIOUS', sm: SecretsManagerClient = (client ??= new SecretsManagerClient({}))): Promise<string | undefined> {
  try {
    const out = await sm.send(new GetSecretValueCommand({ SecretId: arn, VersionStage: stage }));
    return out.SecretString;
  } catch (err) {
    // a secret never rotated has no AWSPREVIOUS
    if (stage === 'AWSPREVIOUS' && (err instanceof ResourceNotFoundException || (err as { name?: string }).name === 'ResourceNotFoundException')) return undefined;
    throw err;
  }
}
