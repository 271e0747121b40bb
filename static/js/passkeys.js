// Passkeys (WebAuthn) for forms marked data-passkey="register", "login" or "confirm".
//
// On submit: ask the server for options (a POST with the form's CSRF token to
// data-options-url; the server stores the single-use challenge), run the
// browser's ceremony, put its answer as JSON in the form's hidden field, and
// submit the form as usual. No inline script: the strict CSP stays.
(function () {
  "use strict";

  var MESSAGES = {
    NotAllowedError:
      "The passkey was not used: the request was cancelled or timed out, " +
      "or your device could not verify you. Try again.",
    InvalidStateError: "This device already holds a passkey for your account.",
    SecurityError:
      "Passkeys do not work at this address. Open the site at its usual address " +
      "(for example http://localhost:5000 rather than 127.0.0.1) and try again.",
    NotSupportedError: "This browser or device cannot use passkeys.",
    AbortError: "The passkey request was interrupted. Try again.",
    unsupported: "This browser cannot use passkeys.",
    network: "The passkey request could not reach the server. Try again.",
    name: "Give the passkey a name, such as the device that holds it.",
    other: "The passkey could not be used. Try again.",
  };

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      var copy = { type: item.type, id: toBuffer(item.id) };
      if (item.transports) {
        copy.transports = item.transports;
      }
      return copy;
    });
  }

  function creationOptions(options) {
    options.challenge = toBuffer(options.challenge);
    options.user.id = toBuffer(options.user.id);
    options.excludeCredentials = descriptors(options.excludeCredentials);
    return { publicKey: options };
  }

  function requestOptions(options) {
    options.challenge = toBuffer(options.challenge);
    options.allowCredentials = descriptors(options.allowCredentials);
    return { publicKey: options };
  }

  function answer(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      json.response.attestationObject = toText(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toText(response.authenticatorData);
      json.response.signature = toText(response.signature);
      json.response.userHandle = toText(response.userHandle);
    }
    return JSON.stringify(json);
  }

  function showError(form, key) {
    var box = form.querySelector("[data-passkey-error]");
    var message = MESSAGES[key] || MESSAGES.other;
    if (box) {
      box.textContent = message;
      box.hidden = false;
    } else {
      window.alert(message);
    }
  }

  function clearError(form) {
    var box = form.querySelector("[data-passkey-error]");
    if (box) {
      box.hidden = true;
      box.textContent = "";
    }
  }

  function fetchOptions(form) {
    var body = new URLSearchParams();
    body.set("csrf_token", form.querySelector("input[name='csrf_token']").value);
    return fetch(form.getAttribute("data-options-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: body,
    }).then(function (reply) {
      if (!reply.ok) {
        var error = new Error("options refused");
        error.name = "network";
        throw error;
      }
      return reply.json();
    });
  }

  function run(form, mode) {
    var field = form.querySelector("[data-passkey-answer]");
    var button = form.querySelector("button[type='submit'], input[type='submit']");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError(form, "unsupported");
      return;
    }
    if (mode === "register") {
      var name = form.querySelector("[data-passkey-name]");
      if (name && !name.value.trim()) {
        showError(form, "name");
        name.focus();
        return;
      }
    }
    clearError(form);
    if (button) {
      button.disabled = true;
    }
    fetchOptions(form)
      .then(function (options) {
        if (mode === "register") {
          return navigator.credentials.create(creationOptions(options));
        }
        return navigator.credentials.get(requestOptions(options));
      })
      .then(function (credential) {
        field.value = answer(credential);
        var from = form.getAttribute("data-remember-from");
        if (from) {
          var box = document.getElementById(from);
          form.querySelector("input[name='remember']").value = box && box.checked ? "y" : "";
        }
        form.setAttribute("data-passkey-done", "");
        // Not form.submit(): a button named "submit" would shadow it.
        HTMLFormElement.prototype.submit.call(form);
      })
      .catch(function (error) {
        if (button) {
          button.disabled = false;
        }
        showError(form, error && error.name);
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var mode = form.getAttribute && form.getAttribute("data-passkey");
    if (!mode || form.hasAttribute("data-passkey-done")) {
      return;
    }
    event.preventDefault();
    run(form, mode);
  });
})();
