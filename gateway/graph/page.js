// Narrows the graph as one types, asking the server for the filtered page
// and swapping its content in; and highlights a drawn node's edges.
(() => {
  const form = document.getElementById("filter");
  const input = document.getElementById("q");
  const pick = document.getElementById("pick");
  let timer;
  let pending;
  async function update() {
    const q = input.value.trim();
    const url = location.pathname + (q ? "?q=" + encodeURIComponent(q) : "");
    pending?.abort();
    const ctl = (pending = new AbortController());
    try {
      const res = await fetch(url, { signal: ctl.signal, headers: { Accept: "text/html" } });
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const next = doc.getElementById("content");
      if (next !== null && !ctl.signal.aborted) {
        document.getElementById("content").replaceWith(document.adoptNode(next));
        history.replaceState(null, "", url);
      }
    } catch (e) {
      if (!ctl.signal.aborted) {
        document.getElementById("content").dataset.error = String(e);
      }
    }
  }
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(update, 150);
  });
  pick.addEventListener("change", () => {
    if (pick.value !== "") {
      input.value = pick.value;
      pick.value = "";
      clearTimeout(timer);
      update();
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(timer);
    update();
  });
  document.addEventListener("mouseover", (e) => {
    const svg = document.getElementById("drawing");
    if (svg === null) {
      return;
    }
    const node = e.target instanceof Element ? e.target.closest("g.node") : null;
    for (const el of svg.querySelectorAll(".hl")) {
      el.classList.remove("hl");
    }
    svg.classList.toggle("focus", node !== null);
    if (node === null) {
      return;
    }
    const id = node.dataset.id;
    node.classList.add("hl");
    for (const edge of svg.querySelectorAll("path.edge")) {
      if (edge.dataset.from === id || edge.dataset.to === id) {
        edge.classList.add("hl");
        const other = edge.dataset.from === id ? edge.dataset.to : edge.dataset.from;
        svg.querySelector(`g.node[data-id="${other}"]`)?.classList.add("hl");
      }
    }
  });
  document.body.dataset.ready = "true";
})();
