// The receipt page's Print button: the browser's print dialog (the print stylesheet in
// portal.css leaves out the navigation and the buttons).
const button = document.getElementById("print");
if (button) button.addEventListener("click", () => window.print());
