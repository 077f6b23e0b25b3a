// The login page: shown when the API answers 403.

import { api } from './api.js';

/** Shows the login form; resolves once a login succeeded. */
export function showLogin() {
  const view = document.getElementById('login-view');
  const form = document.getElementById('login-form');
  const error = document.getElementById('login-error');
  document.getElementById('app').hidden = true;
  view.hidden = false;
  document.getElementById('login-user').focus();
  return new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      error.textContent = '';
      const button = form.querySelector('button');
      button.disabled = true;
      try {
        if (await api.login(form.username.value, form.password.value)) {
          form.password.value = '';
          view.hidden = true;
          resolve();
        } else {
          error.textContent = 'Wrong username or password.';
          form.password.select();
        }
      } catch (err) {
        error.textContent = err.status === 403 ? 'Too many failed attempts: this address is banned for a while.' : err.message;
      } finally {
        button.disabled = false;
      }
    };
  });
}
