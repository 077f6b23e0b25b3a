// Loaded first, as a classic script that runs as soon as it arrives (no imports): asks for
// the torrent list at once, while the modules load, so the first paint waits for the
// slower of the two, not for both.

window.btFirstMaindata = fetch('api/v2/sync/maindata?rid=0', { credentials: 'same-origin' });
