// Progressive enhancement only: every form works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A "select every row" box for the bulk form; hidden until the script runs.
  for (const all of document.querySelectorAll("input.select-all")) {
    all.hidden = false;
    const form = all.closest("form");
    all.addEventListener("change", () => {
      for (const box of form.querySelectorAll("input[name=id]")) box.checked = all.checked;
    });
  }
  // Ask before destructive actions; without the script they run at once.
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    const question = button && button.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
});
