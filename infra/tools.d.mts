/** The plan of one `terraform test` run, as `terraform show -json` writes a plan (the parts used). */
export interface TerraformPlan {
  resource_changes: Array<{
    address: string;
    module_address?: string;
    mode: 'managed' | 'data';
    type: string;
    name: string;
    index?: string | number;
    change: {
      actions: string[];
      after: Record<string, unknown> | null;
      after_unknown: Record<string, unknown>;
    };
  }>;
  output_changes: Record<string, { after: unknown; after_unknown: unknown }>;
}

export function plannedRuns(file: string): Map<string, TerraformPlan>;
export function configurations(): string[];
export function findMirror(): string | undefined;
export function terraformVersion(): string | undefined;
