// Choosing a filter applies it at once (the Search button does the same without JavaScript).
// A file of its own, not an inline handler: the pages' Content-Security-Policy runs no inline script.
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
