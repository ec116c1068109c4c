// tollgate dashboard: live updates. The element with data-live is replaced by what the
// server renders and pushes as server-sent events (every field escaped there). Without
// JavaScript every page is complete, only not live.
(function () {
  'use strict';
  var state = document.getElementById('live-state');
  function show(text, on) {
    if (state) {
      state.textContent = text;
      state.className = 'live-state ' + (on ? 'on' : 'off');
    }
  }
  var filters = document.querySelector('form.filters');
  if (filters) {
    filters.querySelectorAll('select').forEach(function (select) {
      select.addEventListener('change', function () { filters.submit(); });
    });
  }
  var live = document.querySelector('[data-live]');
  if (!live || !window.EventSource) {
    return;
  }
  var source = new EventSource(live.getAttribute('data-live'));
  source.addEventListener('update', function (event) {
    live.innerHTML = event.data;
    show('live', true);
    // Decided or closed meanwhile: its forms no longer apply.
    var facts = live.querySelector('[data-pending]');
    if (facts && facts.getAttribute('data-pending') === 'false') {
      document.querySelectorAll('section.decide, section.secret').forEach(function (form) {
        form.hidden = true;
      });
    }
  });
  source.addEventListener('error', function () {
    show('reconnecting…', false);
  });
}());
