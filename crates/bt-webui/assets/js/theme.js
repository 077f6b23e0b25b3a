// Light and dark: the system's choice until the user picks one (kept in localStorage).

const KEY = 'bt-theme';
const dark = matchMedia('(prefers-color-scheme: dark)');

function isDark() {
  const chosen = localStorage.getItem(KEY);
  return chosen ? chosen === 'dark' : dark.matches;
}

function apply(button) {
  const chosen = localStorage.getItem(KEY);
  if (chosen) document.documentElement.dataset.theme = chosen;
  else delete document.documentElement.dataset.theme;
  button?.setAttribute('aria-pressed', String(isDark()));
  document.dispatchEvent(new Event('themechange'));
}

/** Wires the theme toggle button. */
export function initTheme(button) {
  apply(button);
  dark.addEventListener('change', () => apply(button));
  button.addEventListener('click', () => {
    localStorage.setItem(KEY, isDark() ? 'light' : 'dark');
    apply(button);
  });
}
