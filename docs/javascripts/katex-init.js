// Render the maths pymdownx.arithmatex marks (\( \) inline, \[ \] display) with the vendored KaTeX.
function flatminimaRenderMath() {
  document.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        {left: "\\(", right: "\\)", display: false},
        {left: "\\[", right: "\\]", display: true}
      ],
      throwOnError: false
    });
  });
  document.body.setAttribute("data-math-rendered", "true");
}
if (typeof document$ !== "undefined") {
  document$.subscribe(flatminimaRenderMath);
} else {
  document.addEventListener("DOMContentLoaded", flatminimaRenderMath);
}
