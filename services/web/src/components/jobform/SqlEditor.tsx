import { useEffect, useRef } from "react";
import { basicSetup, EditorView, minimalSetup } from "codemirror";
import { EditorState } from "@codemirror/state";
import { sql, PostgreSQL, MSSQL, MySQL, SQLite, StandardSQL } from "@codemirror/lang-sql";

const DIALECTS: Record<string, typeof StandardSQL> = {
  postgresql: PostgreSQL,
  "sql-server": MSSQL,
  mysql: MySQL,
  sqlite: SQLite,
  duckdb: PostgreSQL, // expressions are DuckDB SQL, closest to PostgreSQL's
};

/** One line: a newline typed or pasted becomes a space (an expression is one line of SQL). */
const oneLine = EditorState.transactionFilter.of((tr) => {
  if (!tr.docChanged || tr.newDoc.lines === 1) return tr;
  const text = tr.newDoc.toString().replace(/\r?\n/g, " ");
  return [tr, { changes: { from: 0, to: tr.newDoc.length, insert: text }, sequential: true }];
});

/** CodeMirror 6 with SQL highlighting (the source's dialect), a controlled value, and the
 * accessible name of the label `labelledBy` names. Loaded only when a form shows it. Tab
 * is not taken: it moves to the next field. */
export default function SqlEditor({ value, onChange, labelledBy, describedBy, dialect, id, minLines = 6, singleLine = false, invalid = false }: { value: string; onChange: (value: string) => void; labelledBy: string; describedBy?: string; dialect?: string; id: string; minLines?: number; singleLine?: boolean; invalid?: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    if (!host.current) return;
    const attributes: Record<string, string> = { "aria-labelledby": labelledBy, id, role: "textbox" };
    attributes["aria-multiline"] = singleLine ? "false" : "true";
    if (describedBy) attributes["aria-describedby"] = describedBy;
    const editor = new EditorView({
      parent: host.current,
      doc: value,
      extensions: [
        singleLine ? [minimalSetup, oneLine] : basicSetup,
        sql({ dialect: DIALECTS[dialect ?? ""] ?? StandardSQL, upperCaseKeywords: true }),
        singleLine ? [] : EditorView.lineWrapping,
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
  }, [dialect, labelledBy, describedBy, id, singleLine]);

  useEffect(() => {
    const editor = view.current;
    if (editor && editor.state.doc.toString() !== value) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: value } });
    }
  }, [value]);

  useEffect(() => {
    view.current?.contentDOM.setAttribute("aria-invalid", invalid ? "true" : "false");
  }, [invalid, dialect, labelledBy, describedBy, id, singleLine]);

  return <div ref={host} data-testid={`${id}-editor`} className={`rounded border bg-white focus-within:ring-2 focus-within:ring-indigo-500 ${invalid ? "border-red-700" : "border-slate-400"}`} />;
}
