/* spar view: the sample and tree browsers' filters, open/close all, links to a node (inlined into the HTML by
   harness/reports/view/render.py; vanilla JS, no network) */
(function () {
  'use strict';
  var errors = document.getElementById('view-errors');
  function report(message) {
    errors.hidden = false;
    errors.appendChild(document.createTextNode('report script error: ' + message + '\n'));
  }
  window.addEventListener('error', function (ev) { report(ev.message || String(ev.error)); });
  function facetsOf(el) {
    if (!el._facets) {
      try { el._facets = JSON.parse(el.getAttribute('data-facets') || '{}'); } catch (e) { el._facets = {}; }
    }
    return el._facets;
  }
  function textOf(el) {
    if (el._text === undefined) { el._text = el.textContent.toLowerCase(); }
    return el._text;
  }
  function setup(browser) {
    var bar = browser.querySelector('.filters');
    var list = browser.querySelector('.items');
    if (!bar || !list) { return; }
    var items = Array.prototype.slice.call(list.children);
    var selects = Array.prototype.slice.call(bar.querySelectorAll('select[data-facet]'));
    var query = bar.querySelector('input.q');
    var counter = bar.querySelector('.count');
    function apply() {
      var wanted = selects.map(function (s) { return [s.getAttribute('data-facet'), s.value]; });
      var q = query ? query.value.trim().toLowerCase() : '';
      var shown = 0;
      items.forEach(function (el) {
        var f = facetsOf(el);
        var ok = wanted.every(function (w) { return !w[1] || (f[w[0]] || []).indexOf(w[1]) >= 0; });
        if (ok && q) { ok = textOf(el).indexOf(q) >= 0; }
        el.classList.toggle('hidden', !ok);
        if (ok) { shown += 1; }
      });
      if (counter) { counter.textContent = 'showing ' + shown + ' of ' + items.length; }
      browser.setAttribute('data-shown', String(shown));
    }
    selects.forEach(function (s) { s.addEventListener('change', apply); });
    if (query) { query.addEventListener('input', apply); }
    var expand = bar.querySelector('button.expand');
    var collapse = bar.querySelector('button.collapse');
    if (expand) {
      expand.addEventListener('click', function () {
        items.forEach(function (el) { if (!el.classList.contains('hidden')) { el.open = true; } });
      });
    }
    if (collapse) {
      collapse.addEventListener('click', function () { items.forEach(function (el) { el.open = false; }); });
    }
    browser._apply = apply;
    apply();
  }
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    while (el) {
      if (el.tagName === 'DETAILS') { el.open = true; }
      el = el.parentElement;
    }
  }
  try {
    Array.prototype.forEach.call(document.querySelectorAll('details.browser'), setup);
    var openAll = document.getElementById('open-all');
    openAll.addEventListener('click', function () {
      var open = openAll.textContent === 'open all';
      Array.prototype.forEach.call(document.querySelectorAll('details.browser, section > details'),
        function (d) { d.open = open || d.parentElement.tagName === 'SECTION'; });
      openAll.textContent = open ? 'close all' : 'open all';
    });
    window.addEventListener('hashchange', openTarget);
    openTarget();
    document.documentElement.setAttribute('data-view-ready', '1');
  } catch (e) {
    report(e && e.message ? e.message : String(e));
  }
}());
