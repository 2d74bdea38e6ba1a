"use strict";
// Passkeys (WebAuthn) for the console: register one on the Account page, use one after the
// password or, where an owner allows it, instead of it. Everything else works without script.
(function () {
  function bytes(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "===".slice((b64.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  }
  function text(buffer) {
    let s = "";
    new Uint8Array(buffer).forEach((b) => { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creation(o) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    }
    o.challenge = bytes(o.challenge);
    o.user.id = bytes(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = bytes(c.id); });
    return o;
  }
  function request(o) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    }
    o.challenge = bytes(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = bytes(c.id); });
    return o;
  }
  function json(cred) {
    if (cred.toJSON) { return cred.toJSON(); }
    const r = cred.response;
    const out = { id: cred.id, rawId: text(cred.rawId), type: cred.type,
                  clientExtensionResults: cred.getClientExtensionResults(), response: {
                    clientDataJSON: text(r.clientDataJSON) } };
    if (r.attestationObject) { out.response.attestationObject = text(r.attestationObject); }
    if (r.authenticatorData) {
      out.response.authenticatorData = text(r.authenticatorData);
      out.response.signature = text(r.signature);
      if (r.userHandle) { out.response.userHandle = text(r.userHandle); }
    }
    return out;
  }
  async function post(url, data) {
    const reply = await fetch(url, { method: "POST", body: new URLSearchParams(data),
                                     credentials: "same-origin" });
    let body = {};
    try { body = await reply.json(); } catch (e) { body = {}; }
    if (!reply.ok) { throw new Error(body.error || "The server refused the passkey"); }
    return body;
  }
  document.querySelectorAll("[data-passkey]").forEach((button) => {
    button.hidden = !window.PublicKeyCredential;
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      const form = button.closest("form");
      const data = Object.fromEntries(new FormData(form));
      const status = document.getElementById(button.dataset.status);
      try {
        const start = await post(button.dataset.start, data);
        const options = JSON.parse(start.options);
        if (start.csrf) { data.csrf = start.csrf; }
        const credential = button.dataset.passkey === "create"
          ? await navigator.credentials.create({ publicKey: creation(options) })
          : await navigator.credentials.get({ publicKey: request(options) });
        data.credential = JSON.stringify(json(credential));
        const done = await post(button.dataset.finish, data);
        window.location.assign(done.redirect);
      } catch (error) {
        status.textContent = error.message || String(error);
        status.hidden = false;
      }
    });
  });
}());
