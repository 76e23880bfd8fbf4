/// The page's style sheet.
enum InspectorPageStyle {
    static let css = """
        :root { --bg: #fafafa; --fg: #1d1d1f; --muted: #6e6e73; --line: #e2e2e6; --accent: #0a66c2;
                --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --pending: #8250df; --sel: #e8f0fe; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
               background: var(--bg); }
        header { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; padding: 10px 16px;
                 background: #fff; border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 2; }
        h1 { font-size: 16px; margin: 0; }
        h1 span { color: var(--muted); font-weight: 400; }
        .filters, .actions { display: flex; gap: 6px; align-items: center; }
        .actions { margin-left: auto; }
        input, textarea, button { font: inherit; }
        input, textarea { border: 1px solid var(--line); border-radius: 4px; padding: 4px 6px; background: #fff; }
        button { border: 1px solid var(--line); background: #fff; border-radius: 4px; padding: 4px 10px;
                 cursor: pointer; }
        button:hover:not(:disabled) { border-color: var(--accent); color: var(--accent); }
        button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
        button.primary:hover { color: #fff; opacity: .9; }
        button:disabled { opacity: .5; cursor: default; }
        .live { font-size: 12px; color: var(--ok); }
        .live.off { color: var(--muted); }
        main { display: grid; grid-template-columns: minmax(420px, 1fr) minmax(420px, 1fr); gap: 0;
               height: calc(100vh - 52px); }
        main.single { grid-template-columns: 1fr; }
        #list { overflow: auto; border-right: 1px solid var(--line); }
        table { border-collapse: collapse; width: 100%; }
        th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; padding: 6px 8px;
             border-bottom: 1px solid var(--line); background: var(--bg); position: sticky; top: 0; }
        td { padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
        td.path { max-width: 360px; overflow: hidden; text-overflow: ellipsis; font-family: ui-monospace, monospace; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        tbody tr { cursor: pointer; background: #fff; }
        tbody tr:hover { background: #f3f6fb; }
        tbody tr.selected { background: var(--sel); }
        .s2 { color: var(--ok); } .s3 { color: var(--accent); } .s4 { color: var(--warn); } .s5 { color: var(--bad); }
        .pending { color: var(--pending); font-weight: 600; }
        .late { color: var(--bad); font-weight: 600; }
        .tag { display: inline-block; font-size: 11px; padding: 0 5px; border-radius: 3px; background: #eef;
               color: var(--pending); margin-right: 4px; }
        #empty { color: var(--muted); padding: 16px; }
        #detail { overflow: auto; padding: 12px 16px 40px; background: #fff; }
        #detail h2 { font-size: 15px; margin: 0 0 6px; font-family: ui-monospace, monospace; word-break: break-all; }
        #detail h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
                     margin: 18px 0 6px; }
        .bar { display: flex; gap: 6px; flex-wrap: wrap; margin: 8px 0; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
        dt { color: var(--muted); font-family: ui-monospace, monospace; }
        dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
        pre { background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 8px; margin: 0;
              overflow: auto; max-height: 420px; font: 12px/1.4 ui-monospace, monospace; white-space: pre-wrap;
              word-break: break-all; }
        .note { color: var(--muted); font-size: 12px; margin: 4px 0; }
        .timing { display: flex; gap: 16px; }
        .timing div b { display: block; font-size: 15px; font-variant-numeric: tabular-nums; }
        form.edit { display: grid; gap: 6px; margin: 8px 0 12px; padding: 10px; border: 1px solid var(--line);
                    border-radius: 6px; background: var(--bg); }
        form.edit .row { display: flex; gap: 6px; }
        form.edit textarea { width: 100%; min-height: 90px; font: 12px/1.4 ui-monospace, monospace; }
        .compare { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
        .diff { background: #fff4d6; }
        a { color: var(--accent); cursor: pointer; }
        """
}
