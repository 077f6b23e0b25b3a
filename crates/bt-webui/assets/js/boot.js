// Loaded first and on its own (no imports): asks for the torrent list at once, while the
// other modules load, so the first paint waits for the slower of the two, not for both.

window.btFirstMaindata = fetch('api/v2/sync/maindata?rid=0', { credentials: 'same-origin' });
