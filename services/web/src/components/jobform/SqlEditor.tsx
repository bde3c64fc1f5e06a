import { useEffect, useRef } from "react";
import { basicSetup, EditorView } from "codemirror";
import { sql, PostgreSQL, MSSQL, MySQL, SQLite, StandardSQL } from "@codemirror/lang-sql";

const DIALECTS: Record<string, typeof StandardSQL> = {
  postgresql: PostgreSQL,
  "sql-server": MSSQL,
  mysql: MySQL,
  sqlite: SQLite,
};

/** CodeMirror 6 with SQL highlighting (the source's dialect), a controlled value, and the
 * accessible name of the label `labelledBy` names. Loaded only when a form shows it. */
export default function SqlEditor({ value, onChange, labelledBy, describedBy, dialect, id, minLines = 6 }: { value: string; onChange: (value: string) => void; labelledBy: string; describedBy?: string; dialect?: string; id: string; minLines?: number }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    if (!host.current) return;
    const attributes: Record<string, string> = { "aria-labelledby": labelledBy, "aria-multiline": "true", id };
    if (describedBy) attributes["aria-describedby"] = describedBy;
    const editor = new EditorView({
      parent: host.current,
      doc: value,
      extensions: [
          basicSetup,
          sql({ dialect: DIALECTS[dialect ?? ""] ?? StandardSQL, upperCaseKeywords: true }),
          EditorView.lineWrapping,
          EditorView.contentAttributes.of(attributes),
          EditorView.theme({ "&": { fontSize: "13px" }, ".cm-content": { minHeight: `${minLines * 1.4}em` } }),
          EditorView.updateListener.of((update) => {
            if (update.docChanged) changed.current(update.state.doc.toString());
          }),
      ],
    });
    view.current = editor;
    return () => {
      editor.destroy();
      view.current = null;
    };
    // the editor is made once per dialect; the value is synced below
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [dialect, labelledBy, describedBy, id]);

  useEffect(() => {
    const editor = view.current;
    if (editor && editor.state.doc.toString() !== value) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: value } });
    }
  }, [value]);

  return <div ref={host} data-testid={`${id}-editor`} className="rounded border border-slate-400 bg-white focus-within:ring-2 focus-within:ring-indigo-500" />;
}
