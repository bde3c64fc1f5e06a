/** The CSV job form's logic: from the detected columns and the user's edits to the job's
 * `fileConfig.columns` (only what differs from detection: the API takes the rest from it). */

export const COLUMN_TYPES = ["string", "integer", "decimal", "float", "boolean", "date", "timestamp"] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export interface DetectedColumn {
  name: string;
  type: ColumnType;
  format?: string | null;
  nullable?: boolean;
  pii?: boolean;
  examples?: string[];
}

export interface ColumnEdit {
  type: ColumnType;
  format: string;
  rename: string;
}

export function initialEdits(columns: DetectedColumn[]): Record<string, ColumnEdit> {
  return Object.fromEntries(columns.map((c) => [c.name, { type: c.type, format: c.format ?? "", rename: "" }]));
}

export function columnOverrides(
  columns: DetectedColumn[],
  edits: Record<string, ColumnEdit>,
): { name: string; type?: ColumnType; format?: string; rename?: string }[] {
  const out: { name: string; type?: ColumnType; format?: string; rename?: string }[] = [];
  for (const column of columns) {
    const edit = edits[column.name];
    if (!edit) continue;
    const override: { name: string; type?: ColumnType; format?: string; rename?: string } = { name: column.name };
    if (edit.type !== column.type) override.type = edit.type;
    if (edit.format.trim() && edit.format.trim() !== (column.format ?? "")) override.format = edit.format.trim();
    if (edit.rename.trim() && edit.rename.trim() !== column.name) override.rename = edit.rename.trim();
    if (Object.keys(override).length > 1) out.push(override);
  }
  return out;
}

/** A bronze table name from a file name: `CRM Export (2).csv` -> `bronze_crm_export_2`. */
export function bronzeTableFor(fileName: string): string {
  const stem = fileName.replace(/\.[^.]*$/, "").toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  return `bronze_${stem || "file"}`;
}
