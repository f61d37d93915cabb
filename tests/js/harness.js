// Runs the real Mermaid parser (and renderer) in a headless browser for the diagram tests.
//
// The page that loads this script (written by tests/compiler/test_diagrams_tools.py) holds:
//   <script id="diagrams" type="application/json">{"name": "mermaid source", ...}</script>
//   <pre id="results"></pre>
//   <div id="rendered"></div>
// and names in data-render="name" the one diagram to draw visibly (for the screenshot).
// Each diagram is parsed with mermaid.parse(); every one is also rendered off-screen with
// mermaid.render(), because some errors (e.g. edges Mermaid cannot lay out) only show there.
// The results go into #results as JSON: {"name": {"ok": bool, "error": str|null}, ...},
// and #results gets data-done="1" when finished, so the test can read them back from the DOM.
(async () => {
  const results = {};
  const out = document.getElementById("results");
  try {
    mermaid.initialize({
      startOnLoad: false,
      deterministicIds: true,
      securityLevel: "strict",
      theme: "default",
    });
    const diagrams = JSON.parse(document.getElementById("diagrams").textContent);
    const target = document.body.dataset.render || null;
    let index = 0;
    for (const name of Object.keys(diagrams).sort()) {
      const text = diagrams[name];
      index += 1;
      try {
        await mermaid.parse(text, { suppressErrors: false });
        const { svg } = await mermaid.render("diagram" + index, text);
        if (!svg.includes("<svg")) {
          throw new Error("render returned no SVG");
        }
        if (name === target) {
          document.getElementById("rendered").innerHTML = svg;
        }
        results[name] = { ok: true, error: null };
      } catch (error) {
        results[name] = { ok: false, error: String((error && error.message) || error) };
      }
    }
  } catch (error) {
    results["<harness>"] = { ok: false, error: String((error && error.message) || error) };
  }
  out.textContent = JSON.stringify(results);
  out.dataset.done = "1";
})();
