// Vigil web console: plain JavaScript, no build step. The session cookie is HttpOnly: this script
// never sees it, only the CSRF token the server hands to a logged-in page.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const SERVING = new Set(['PRIM', 'ALONE', 'UP']);
  const MIRROR_VERBS = ['start', 'stop', 'restart', 'prim', 'second', 'swap'];
  const FARM_VERBS = ['start', 'stop', 'restart'];
  let session = null;
  let view = null;
  let events = null;
  const shownState = new Map(); // "node/module" -> state shown, to stamp the time a change reached the page
  window.vigilConsole = { changes: [] };

  async function api(method, path, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && session) headers['x-csrf-token'] = session.csrf;
    const r = await fetch(`/console${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
    let data = {};
    try { data = await r.json(); } catch { /* empty body */ }
    return { status: r.status, data };
  }

  // ---- login ---------------------------------------------------------------------------------
  function showLogin(message) {
    session = null;
    if (events) events.close();
    $('app').hidden = true;
    $('logout').hidden = true;
    $('whoami').textContent = '';
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = $('token').value;
    $('token').value = '';
    const r = await api('POST', '/login', { token });
    if (r.status !== 200) return showLogin(r.data.error || `login failed (HTTP ${r.status})`);
    await start();
  });

  $('logout').addEventListener('click', async () => {
    await api('POST', '/api/logout', {});
    showLogin('logged out');
  });

  async function start() {
    const r = await api('GET', '/api/session');
    if (r.status !== 200) return showLogin(r.status === 401 ? '' : r.data.error);
    session = r.data;
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    $('whoami').textContent = `role: ${session.role}`;
    $('whoami').title = session.rights;
    $('cluster-name').textContent = session.cluster;
    $('config-view').hidden = !session.canConfig;
    connect();
  }

  // ---- live view -----------------------------------------------------------------------------
  function connect() {
    if (events) events.close();
    events = new EventSource('/console/api/events');
    events.addEventListener('cluster', (e) => {
      view = JSON.parse(e.data);
      $('live').className = 'live on';
      $('live').textContent = `live ${new Date(view.time).toLocaleTimeString()}`;
      $('app').classList.remove('stale');
      $('stale-note').hidden = true;
      render();
    });
    events.onerror = async () => {
      $('live').className = 'live off';
      $('live').textContent = `no connection to ${location.host}: retrying`;
      // what is on the page is no longer live: say so rather than show old states as current
      $('app').classList.add('stale');
      $('stale-note').hidden = false;
      $('stale-note').textContent = `${view?.via ?? location.host}, which serves this console, does not answer (since ${new Date().toLocaleTimeString()}): the states below are the last known. Open the console on another node to see the cluster now.`;
      const r = await api('GET', '/api/session').catch(() => ({ status: 0 }));
      if (r.status === 401) showLogin('session expired: log in again');
    };
  }

  const moduleNames = () => {
    const names = [];
    for (const n of view.nodes) for (const m of n.snapshot?.modules ?? []) if (!names.includes(m.module)) names.push(m.module);
    return names;
  };
  const statusOf = (node, module) => node.snapshot?.modules.find((m) => m.module === module);
  /** what the reachable nodes' heartbeats say about a node that does not answer */
  function heardOf(nodeName, module) {
    for (const n of view.nodes) {
      if (!n.reachable) continue;
      const p = statusOf(n, module)?.peers.find((x) => x.node === nodeName);
      if (p) return `${n.node} hears it as ${p.state}`;
    }
    return '';
  }
  const fmtBytes = (b) => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(1)} GiB` : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(0)} KiB` : `${b} B`);

  function replicationCell(s) {
    if (!s || s.mode !== 'mirror') return '';
    const r = s.resync || {};
    if (r.bytesTotal) {
      const pct = Math.floor((100 * (r.bytesDone || 0)) / r.bytesTotal);
      return `<div class="resync">resync ${pct}% — ${fmtBytes(r.bytesDone || 0)} / ${fmtBytes(r.bytesTotal)}, ${fmtBytes(r.rateBps || 0)}/s, ETA ${Math.round(r.etaS || 0)} s</div><progress max="100" value="${pct}"></progress>`;
    }
    if (s.state === 'ALONE') return `<div class="warn">not replicated${r.trackedBytes ? `: ${fmtBytes(r.trackedBytes)} to resync` : ''}</div>`;
    if (s.state === 'PRIM') return `<div class="muted">replicating synchronously to ${esc(s.peers.map((p) => p.node).join(', '))}</div>`;
    if (s.state === 'SECOND') return s.inSync ? '<div class="muted">in sync</div>' : '<div class="warn">not in sync: waits for a resync</div>';
    return '';
  }

  function cell(node, module, mode) {
    const s = statusOf(node, module);
    if (!node.reachable) {
      const last = s ? ` (last seen ${esc(s.state)})` : '';
      return `<td class="cell unreachable" data-node="${esc(node.node)}" data-module="${esc(module)}"><span class="state state-UNREACHABLE" data-state="UNREACHABLE">UNREACHABLE</span><div class="unreachable-note">does not answer${last}</div><div class="muted">${esc(heardOf(node.node, module))}</div></td>`;
    }
    if (!s) return '<td class="muted">—</td>';
    const shown = s.state === s.target ? s.state : `${s.state} → ${s.target}`;
    const names = [...new Set([...(node.snapshot?.checkers?.[module] || []), ...Object.keys(s.checkers || {})])];
    const checkers = names.map((k) => {
      const up = s.checkers?.[k] !== false;
      return `<div class="checker ${up ? 'up' : 'down'}" data-checker="${esc(k)}">checker ${esc(k)}: ${up ? 'up' : 'DOWN'}</div>`;
    }).join('');
    let share = '';
    if (s.buckets) {
      const total = Object.values(s.buckets).reduce((a, b) => a + b.length, 0) || 256;
      share = `<div class="muted">share ${Math.round((100 * (s.buckets[node.node]?.length || 0)) / total)}% (${s.buckets[node.node]?.length || 0}/${total} buckets)</div>`;
    }
    const verbs = mode === 'farm' ? FARM_VERBS : MIRROR_VERBS;
    const buttons = session?.canAct ? `<div class="actions">${verbs.map((v) => `<button type="button" class="act" data-node="${esc(node.node)}" data-module="${esc(module)}" data-verb="${v}">${v}</button>`).join('')}</div>` : '';
    return `<td class="cell" data-node="${esc(node.node)}" data-module="${esc(module)}"><span class="state state-${esc(s.state)}" data-state="${esc(s.state)}">${esc(shown)}</span> <span class="muted">${s.ready ? 'ready' : 'not ready'} · gen ${s.gen}</span>${share}${replicationCell(s)}${checkers}<div class="reason">${esc(s.reason)}</div>${buttons}</td>`;
  }

  function render() {
    if (!view) return;
    const modules = moduleNames();
    $('via').textContent = `via ${view.via}`;
    const head = view.nodes.map((n) => `<th class="node ${n.reachable ? '' : 'unreachable'}" data-node="${esc(n.node)}">${esc(n.node)} <span class="muted">${esc(n.addr)}</span>${n.reachable ? '' : `<div>UNREACHABLE since ${esc(new Date(n.since || view.time).toLocaleTimeString())}: ${esc(n.error)}</div>`}</th>`).join('');
    const rows = modules.map((m) => {
      const any = view.nodes.map((n) => statusOf(n, m)).find(Boolean);
      const mode = any?.mode || 'mirror';
      const vips = view.nodes.map((n) => n.snapshot?.vips?.[m]).find((v) => v && v.length) || [];
      const holders = view.nodes.filter((n) => n.reachable && SERVING.has(statusOf(n, m)?.state)).map((n) => n.node);
      const vipCell = vips.length ? `${esc(vips.join(', '))}<div class="muted">held by ${esc(holders.join(', ') || 'nobody')}</div>` : `<span class="muted">no VIP</span><div class="muted">serving: ${esc(holders.join(', ') || 'nobody')}</div>`;
      return `<tr data-module="${esc(m)}"><th>${esc(m)} <span class="muted">${esc(mode)}</span></th>${view.nodes.map((n) => cell(n, m, mode)).join('')}<td class="vip">${vipCell}</td></tr>`;
    }).join('');
    $('grid').innerHTML = `<table><thead><tr><th>module</th>${head}<th>virtual IP</th></tr></thead><tbody>${rows}</tbody></table>`;
    stampChanges();
    renderLogs();
  }

  function stampChanges() {
    const now = Date.now();
    for (const el of document.querySelectorAll('#grid td.cell')) {
      const key = `${el.dataset.node}/${el.dataset.module}`;
      const state = el.querySelector('.state')?.dataset.state;
      if (shownState.get(key) !== state) {
        shownState.set(key, state);
        window.vigilConsole.changes.push({ node: el.dataset.node, module: el.dataset.module, state, at: now });
      }
    }
  }

  function renderLogs() {
    const recs = [];
    for (const n of view.nodes) for (const [m, list] of Object.entries(n.snapshot?.logs || {})) for (const r of list) recs.push({ ...r, node: n.node, module: m });
    recs.sort((a, b) => a.time.localeCompare(b.time));
    // a state change the core makes without steps (PRIM -> ALONE when the secondary goes) is logged as a note
    const asTransition = (r) => {
      if (r.kind === 'transition') return r.phase !== 'done' ? r : null;
      const m = r.kind === 'note' && /^(STOP|WAIT|ALONE|PRIM|SECOND|UP) -> (STOP|WAIT|ALONE|PRIM|SECOND|UP): (.*)$/.exec(r.msg);
      return m ? { ...r, from: m[1], to: m[2], reason: m[3] } : null;
    };
    const tr = recs.map(asTransition).filter(Boolean).slice(-15).reverse();
    $('transitions').tBodies[0].innerHTML = tr.map((r) => `<tr><td>${esc(new Date(r.time).toLocaleTimeString())}</td><td>${esc(r.node)}</td><td>${esc(r.module)}</td><td>${esc(r.from)} → ${esc(r.to)}${r.phase === 'failed' ? ' <b class="error">failed</b>' : ''}</td><td>${esc(r.reason)}${r.detail ? ` <span class="error">${esc(r.detail)}</span>` : ''}</td></tr>`).join('');
    const line = (r) => {
      const t = new Date(r.time).toLocaleTimeString();
      if (r.kind === 'transition') return `${t} ${r.node}/${r.module} ${r.from} -> ${r.to} ${r.phase}: ${r.reason}`;
      if (r.kind === 'script') return `${t} ${r.node}/${r.module} script ${r.script} ${r.action}: ${r.ok ? 'ok' : r.timedOut ? 'timed out' : `failed (${r.code ?? r.signal})`} ${r.durationMs} ms`;
      return `${t} ${r.node}/${r.module} ${r.level}: ${r.msg}`;
    };
    const tail = $('logtail');
    const atEnd = tail.scrollTop + tail.clientHeight >= tail.scrollHeight - 4;
    tail.textContent = recs.slice(-60).map(line).join('\n');
    if (atEnd) tail.scrollTop = tail.scrollHeight;
  }

  // ---- actions -------------------------------------------------------------------------------
  function peersOf(module, nodeName) {
    return view.nodes.filter((n) => n.node !== nodeName).map((n) => ({ node: n.node, s: statusOf(n, module), reachable: n.reachable }));
  }
  /** what will happen, in the operator's words, before anything is sent */
  function explain(nodeName, module, verb) {
    const s = statusOf(view.nodes.find((n) => n.node === nodeName), module);
    const mode = s?.mode || 'mirror';
    const others = peersOf(module, nodeName);
    const peer = others[0];
    const primary = [{ node: nodeName, s }, ...others].find((x) => x.s && (x.s.state === 'PRIM' || x.s.state === 'ALONE'));
    if (mode === 'farm') {
      if (verb === 'stop') return `${nodeName} leaves the farm ${module}: its application stops and its share of the clients moves to the other nodes.`;
      if (verb === 'start') return `${nodeName} joins the farm ${module}: it takes a share of the clients once its application runs.`;
      return `${module}'s application restarts on ${nodeName} in place; its share of the clients waits for it.`;
    }
    switch (verb) {
      case 'start': return `${module} starts on ${nodeName}: it becomes primary or secondary as its data and ${peer?.node ?? 'its peer'} allow.`;
      case 'stop': return primary?.node === nodeName
        ? `${module} stops on ${nodeName}, the primary: its application stops there${peer?.s?.state === 'SECOND' ? ` and ${peer.node} takes over as primary (ALONE)` : ' and nobody serves it afterwards'}.`
        : `${module} stops on ${nodeName}: ${primary ? `${primary.node} stays primary, alone (changes are tracked for the resync)` : 'it is not serving'}.`;
      case 'restart': return `${module}'s application restarts on ${nodeName} in place (stop then start scripts); the roles do not change.`;
      case 'prim': return `${nodeName} becomes primary of ${module}${primary && primary.node !== nodeName ? ` (${primary.node} is primary now: the daemon refuses unless it steps down; use swap)` : ''}.`;
      case 'second': return primary?.node === nodeName
        ? `${nodeName} becomes secondary of ${module}: ${peer?.node ?? 'the peer'} becomes primary if it is in sync; writes pause during the handover.`
        : `${nodeName} becomes secondary of ${module}${primary ? ` and resyncs from ${primary.node}` : ''}.`;
      case 'swap': {
        if (!primary) return `swap ${module}: there is no primary now, so the daemon will refuse.`;
        const next = [{ node: nodeName, s }, ...others].find((x) => x.node !== primary.node);
        return `${next?.node ?? 'the secondary'} becomes primary of ${module} and ${primary.node} secondary; writes pause for the swap.`;
      }
    }
    return `${verb} ${module} on ${nodeName}`;
  }

  function showResult(ok, text) {
    const el = $('action-result');
    el.hidden = false;
    el.className = ok ? 'ok' : 'refused';
    el.textContent = text;
  }

  let pending = null;
  $('grid').addEventListener('click', (e) => {
    const b = e.target.closest('button.act');
    if (!b) return;
    pending = { node: b.dataset.node, module: b.dataset.module, verb: b.dataset.verb };
    $('confirm-title').textContent = `${pending.verb} ${pending.module} on ${pending.node}?`;
    $('confirm-text').textContent = explain(pending.node, pending.module, pending.verb);
    $('confirm-force-row').hidden = pending.verb !== 'prim';
    $('confirm-force').checked = false;
    $('confirm').showModal();
  });
  $('confirm').addEventListener('close', async () => {
    if ($('confirm').returnValue !== 'ok' || !pending) return;
    const a = { ...pending, ...(pending.verb === 'prim' && $('confirm-force').checked ? { force: true } : {}) };
    pending = null;
    showResult(true, `${a.verb} ${a.module} on ${a.node}: sent…`);
    const r = await api('POST', '/api/action', a);
    if (r.status === 401) return showLogin('session expired: log in again');
    if (r.status === 200) showResult(true, `${a.verb} ${a.module} on ${a.node}: ${r.data.message || 'done'}`);
    else showResult(false, `${a.verb} ${a.module} on ${a.node} refused: ${r.data.message || r.data.error || `HTTP ${r.status}`}`);
  });

  $('config-view').addEventListener('toggle', async () => {
    if (!$('config-view').open) return;
    const r = await api('GET', '/api/config');
    $('config-text').textContent = r.status === 200 ? JSON.stringify(r.data, null, 2) : r.data.error;
  });

  start();
})();
