// Choosing a catalogue filter runs the search at once. A handler in the page's HTML
// (onchange="...") would be refused by the pages' script policy, which allows only
// scripts served from /static and the page's own nonce.
for (const select of document.querySelectorAll("#filters select")) {
  select.addEventListener("change", () => select.form.submit());
}
