/** Elkeid's plugin config item (AgentConfigMsg JSON) and its stored form (configs.ts). */

/** Elkeid's AgentConfigMsg JSON. */
export interface ConfigMsg {
  name: string;
  type: string;
  signature: string;
  version: string;
  sha256: string;
  download_url: string[];
  detail: string;
}

/** A config item as stored in its scope: the message and its position in the scope's list. */
export interface StoredConfig extends ConfigMsg {
  pos: number;
}
