// apid dashboard: the only script. Forms marked data-confirm ask before they
// are sent and then carry confirm=1; without script the server asks on a
// page of its own instead. Served from apid itself (the page's CSP allows
// no inline script).
'use strict';
document.addEventListener('submit', function (ev) {
  var f = ev.target;
  var q = f.getAttribute('data-confirm');
  if (!q) return;
  if (!window.confirm(q)) { ev.preventDefault(); return; }
  if (!f.querySelector('input[name="confirm"]')) {
    var i = document.createElement('input');
    i.type = 'hidden'; i.name = 'confirm'; i.value = '1';
    f.appendChild(i);
  }
});
