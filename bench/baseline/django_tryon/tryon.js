/*
 * django-tryon: the "Try it on" button and its dialog.
 *
 * Plain JavaScript, no dependencies. Every element with [data-tryon] on the
 * page is set up once, however many times this script is loaded; call
 * DjangoTryOn.init(element) for widgets added to the page later.
 *
 * Events (CustomEvent, bubbling from the widget's root element), for a shop's
 * analytics: tryon:open, tryon:submit, tryon:success, tryon:error. Their
 * detail always has garmentId and jobId (null before a job exists).
 */
(function () {
  "use strict";

  if (window.DjangoTryOn) {
    // Loaded a second time (a fragment that carried the assets): set up any new widgets.
    window.DjangoTryOn.init(document);
    return;
  }

  var ACTIVE_STATUSES = ["pending", "queued", "processing"];
  var FAILED_STATUSES = ["failed", "expired", "canceled"];
  // Poll soon after sending (short jobs and reused results come back fast),
  // then less often, so a slow provider day does not flood the shop.
  var POLL_FIRST_MS = 1000;
  var POLL_MAX_MS = 5000;
  var POLL_GROWTH = 1.5;
  var STORAGE_PREFIX = "django-tryon:job:";
  var FOCUSABLE =
    'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), ' +
    'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
  // Only one widget per garment reopens itself after a reload.
  var reopenedGarments = {};

  function readStored(key) {
    try {
      var raw = window.sessionStorage.getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch (error) {
      return null; // Storage disabled or the value is not ours: start afresh.
    }
  }

  function writeStored(key, value) {
    try {
      window.sessionStorage.setItem(key, JSON.stringify(value));
    } catch (error) {
      // Without storage a running job does not survive a reload; the widget still works.
    }
  }

  function removeStored(key) {
    try {
      window.sessionStorage.removeItem(key);
    } catch (error) {
      // Nothing was stored then.
    }
  }

  function formatElapsed(milliseconds) {
    var seconds = Math.max(0, Math.floor(milliseconds / 1000));
    var minutes = Math.floor(seconds / 60);
    seconds = seconds % 60;
    return minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
  }

  function isVisible(element) {
    return element.getClientRects().length > 0;
  }

  /* The readable message of an error answer of the shopper API, or fallback. */
  function errorMessage(body, fallback) {
    if (!body || typeof body !== "object") {
      return fallback;
    }
    if (body.error && typeof body.error.message === "string") {
      return body.error.message;
    }
    if (typeof body.detail === "string") {
      return body.detail;
    }
    if (typeof body.message === "string") {
      return body.message;
    }
    var keys = Object.keys(body);
    for (var i = 0; i < keys.length; i++) {
      var value = body[keys[i]];
      if (Array.isArray(value) && typeof value[0] === "string") {
        return value[0];
      }
      if (typeof value === "string") {
        return value;
      }
    }
    return fallback;
  }

  function errorCode(body) {
    if (body && body.error && typeof body.error.code === "string") {
      return body.error.code;
    }
    if (body && typeof body.code === "string") {
      return body.code;
    }
    return null;
  }

  function readJson(response) {
    return response.json().catch(function () {
      return null;
    });
  }

  function Widget(root) {
    this.root = root;
    this.config = JSON.parse(root.getAttribute("data-tryon-config"));
    this.messages = this.config.messages;
    this.garmentId = this.config.garmentId;
    this.storageKey = STORAGE_PREFIX + this.garmentId;
    this.dialog = root.querySelector("dialog");
    this.opener = root.querySelector("[data-tryon-open]");
    this.form = root.querySelector('[data-tryon-step="pick"]');
    this.live = root.querySelector("[data-tryon-live]");
    this.step = "pick";
    this.file = null;
    this.previewUrl = null;
    this.job = null; // {id, startedAt, status}
    this.generation = 0; // bumped on reset: answers for an older job are ignored
    this.pollTimer = null;
    this.pollDelay = POLL_FIRST_MS;
    this.tickTimer = null;
    this.sending = false;
    this.returnFocus = null;
    this.bind();
    this.resume();
  }

  Widget.prototype.find = function (selector) {
    return this.root.querySelector(selector);
  };

  Widget.prototype.findAll = function (selector) {
    return Array.prototype.slice.call(this.root.querySelectorAll(selector));
  };

  Widget.prototype.bind = function () {
    var self = this;
    this.opener.addEventListener("click", function () {
      self.open();
    });
    this.findAll("[data-tryon-close]").forEach(function (button) {
      button.addEventListener("click", function () {
        self.dialog.close();
      });
    });
    this.dialog.addEventListener("close", function () {
      self.onClose();
    });
    // A click on the backdrop lands on the <dialog> itself, outside its inner box. A drag
    // that starts inside (selecting text) and ends outside must not close it.
    var pressedOnBackdrop = false;
    this.dialog.addEventListener("pointerdown", function (event) {
      pressedOnBackdrop = event.target === self.dialog;
    });
    this.dialog.addEventListener("click", function (event) {
      if (event.target === self.dialog && pressedOnBackdrop) {
        self.dialog.close();
      }
      pressedOnBackdrop = false;
    });
    this.dialog.addEventListener("keydown", function (event) {
      if (event.key === "Tab") {
        self.trapFocus(event);
      }
    });
    this.findAll("[data-tryon-file]").forEach(function (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        // Cleared so that choosing the same file again still fires "change".
        input.value = "";
        if (file) {
          self.choose(file);
        }
      });
    });
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit();
    });
    this.findAll("[data-tryon-again]").forEach(function (button) {
      button.addEventListener("click", function () {
        self.reset();
      });
    });
    this.find("[data-tryon-retry]").addEventListener("click", function () {
      self.retry();
    });
    this.findAll("[data-tryon-delete]").forEach(function (button) {
      button.addEventListener("click", function () {
        self.erase(button);
      });
    });
  };

  Widget.prototype.dispatch = function (name, extra) {
    var detail = { garmentId: this.garmentId, jobId: this.job ? this.job.id : null };
    Object.keys(extra || {}).forEach(function (key) {
      detail[key] = extra[key];
    });
    this.root.dispatchEvent(new CustomEvent(name, { bubbles: true, detail: detail }));
  };

  Widget.prototype.announce = function (text) {
    this.live.textContent = text;
  };

  Widget.prototype.csrfToken = function () {
    var input = this.form.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  };

  Widget.prototype.jobUrl = function (jobId) {
    return this.config.jobUrl.replace(this.config.jobIdPlaceholder, encodeURIComponent(jobId));
  };

  Widget.prototype.remember = function () {
    if (!this.job) {
      removeStored(this.storageKey);
      return;
    }
    writeStored(this.storageKey, {
      jobId: this.job.id,
      startedAt: this.job.startedAt,
      open: this.dialog.open,
    });
  };

  /* Opening, closing, focus ---------------------------------------------------------- */

  Widget.prototype.open = function () {
    if (this.dialog.open) {
      return;
    }
    this.returnFocus = document.activeElement;
    this.dialog.showModal();
    this.dispatch("tryon:open");
    if (this.job && this.step !== "result" && this.step !== "failure") {
      this.showProgress(this.job.status || "pending");
      this.pollDelay = POLL_FIRST_MS;
      this.poll();
    } else {
      this.show(this.step);
    }
    this.focusStep();
    this.remember();
  };

  Widget.prototype.onClose = function () {
    this.stopPolling();
    this.remember();
    var target = this.returnFocus;
    if (!target || !document.contains(target) || target === document.body) {
      target = this.opener;
    }
    target.focus();
  };

  Widget.prototype.trapFocus = function (event) {
    var focusable = Array.prototype.slice
      .call(this.dialog.querySelectorAll(FOCUSABLE))
      .filter(isVisible);
    if (!focusable.length) {
      return;
    }
    var first = focusable[0];
    var last = focusable[focusable.length - 1];
    var active = document.activeElement;
    var inside = focusable.indexOf(active) !== -1;
    if (event.shiftKey && (active === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  };

  /* Steps ------------------------------------------------------------------------------ */

  Widget.prototype.show = function (step) {
    var changed = step !== this.step;
    this.step = step;
    this.findAll("[data-tryon-step]").forEach(function (section) {
      section.hidden = section.getAttribute("data-tryon-step") !== step;
    });
    if (step !== "progress") {
      this.stopTicking();
    }
    if (changed || document.activeElement === this.dialog || !this.dialog.contains(document.activeElement)) {
      this.focusStep();
    }
  };

  Widget.prototype.focusStep = function () {
    var target = {
      pick: "[data-tryon-file]",
      progress: "[data-tryon-progress-text]",
      result: "[data-tryon-result-title]",
      failure: "[data-tryon-failure-text]",
    }[this.step];
    var element = target && this.find(target);
    if (element && this.dialog.open) {
      element.focus();
    }
  };

  Widget.prototype.setMessage = function (selector, text) {
    var element = this.find(selector);
    element.textContent = text || "";
    element.hidden = !text;
  };

  Widget.prototype.showError = function (text) {
    this.setMessage("[data-tryon-notice]", "");
    this.setMessage("[data-tryon-error]", text);
    this.announce(text);
  };

  /* Choosing a photo -------------------------------------------------------------------- */

  /* The intake's own checks that a browser can make before sending: same order, same words. */
  Widget.prototype.check = function (file) {
    var messages = this.messages;
    if (file.size === 0) {
      return { code: "empty_file", message: messages.empty };
    }
    if (file.size > this.config.maxUploadBytes) {
      return { code: "too_large_upload", message: messages.tooLarge };
    }
    if (this.config.acceptTypes.indexOf(file.type) !== -1) {
      return null;
    }
    var format = this.config.refusedTypes[file.type];
    if (format) {
      return { code: "unsupported_type", message: messages.unsupported.replace("{format}", format) };
    }
    return { code: "not_an_image", message: messages.notAnImage };
  };

  Widget.prototype.refuse = function (problem) {
    this.setPreview(null);
    this.showError(problem.message);
    this.dispatch("tryon:error", { code: problem.code, message: problem.message });
  };

  Widget.prototype.choose = function (file) {
    var self = this;
    var problem = this.check(file);
    if (problem) {
      this.refuse(problem);
      return;
    }
    this.setPreview(file);
    this.setMessage("[data-tryon-error]", "");
    this.setMessage("[data-tryon-notice]", "");
    this.announce(this.messages.photoChosen);
    var image = this.find("[data-tryon-preview-image]");
    image.onload = function () {
      var minimum = self.config.minImageSide;
      if (self.file === file && Math.min(image.naturalWidth, image.naturalHeight) < minimum) {
        self.refuse({
          code: "too_small",
          message: self.messages.tooSmall
            .replace("{width}", image.naturalWidth)
            .replace("{height}", image.naturalHeight),
        });
      }
    };
    // A photo this browser cannot show (HEIC in most) may still be one the shop reads.
    image.onerror = function () {
      if (self.file === file) {
        self.find("[data-tryon-preview]").hidden = true;
      }
    };
  };

  Widget.prototype.setPreview = function (file) {
    if (this.previewUrl) {
      URL.revokeObjectURL(this.previewUrl);
      this.previewUrl = null;
    }
    this.file = file;
    var preview = this.find("[data-tryon-preview]");
    var image = this.find("[data-tryon-preview-image]");
    var photo = this.find("[data-tryon-progress-photo]");
    if (file) {
      this.previewUrl = URL.createObjectURL(file);
      image.src = this.previewUrl;
      photo.src = this.previewUrl;
    } else {
      image.removeAttribute("src");
      photo.removeAttribute("src");
    }
    preview.hidden = !file;
    photo.hidden = !file;
    this.find("[data-tryon-choose-text]").hidden = !!file;
    this.find("[data-tryon-change-text]").hidden = !file;
  };

  /* Sending and following a job ----------------------------------------------------------- */

  Widget.prototype.submit = function () {
    if (!this.file) {
      this.showError(this.messages.noPhoto);
      this.find("[data-tryon-file]").focus();
      return;
    }
    var consent = this.find("[data-tryon-consent]");
    if (this.config.requireConsent && consent && !consent.checked) {
      this.showError(this.messages.noConsent);
      consent.focus();
      return;
    }
    this.send();
  };

  Widget.prototype.retry = function () {
    if (this.file) {
      this.send();
    } else {
      this.reset();
    }
  };

  Widget.prototype.send = function () {
    if (this.sending) {
      return;
    }
    var self = this;
    var consent = this.find("[data-tryon-consent]");
    var data = new FormData();
    data.append("garment", String(this.garmentId));
    data.append("person_image", this.file, this.file.name || "photo.jpg");
    data.append("consent", consent && consent.checked ? "true" : "false");
    var generation = ++this.generation;
    this.sending = true;
    this.setBusy(true);
    this.announce(this.messages.sending);
    fetch(this.config.jobsUrl, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": this.csrfToken() },
    })
      .then(function (response) {
        return readJson(response).then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        });
      })
      .then(
        function (answer) {
          if (generation !== self.generation) {
            return;
          }
          if (answer.ok && answer.body && answer.body.id) {
            self.start(answer.body);
          } else {
            self.refused(errorMessage(answer.body, self.messages.failed), errorCode(answer.body));
          }
        },
        function () {
          if (generation === self.generation) {
            self.refused(self.messages.network, "network");
          }
        }
      )
      .then(function () {
        self.sending = false;
        self.setBusy(false);
      });
  };

  Widget.prototype.setBusy = function (busy) {
    this.findAll("[data-tryon-submit], [data-tryon-retry]").forEach(function (button) {
      button.disabled = busy;
      button.setAttribute("aria-busy", busy ? "true" : "false");
    });
  };

  /* The server did not take the photo: say why where the shopper is looking. */
  Widget.prototype.refused = function (message, code) {
    if (this.step === "pick") {
      this.showError(message);
    } else {
      this.showFailure(message);
    }
    this.dispatch("tryon:error", { code: code, message: message });
  };

  Widget.prototype.start = function (job) {
    this.job = { id: job.id, startedAt: Date.now(), status: job.status };
    this.remember();
    this.dispatch("tryon:submit", { status: job.status, reused: !!job.reused });
    this.pollDelay = POLL_FIRST_MS;
    this.update(job);
  };

  Widget.prototype.update = function (job) {
    this.job.status = job.status;
    if (ACTIVE_STATUSES.indexOf(job.status) !== -1) {
      this.showProgress(job.status);
      this.schedulePoll();
    } else if (job.status === "succeeded" && job.result_url) {
      this.showResult(job);
    } else {
      var message = (job.error && job.error.message) || this.messages.failed;
      var code = (job.error && job.error.code) || job.status;
      this.showFailure(message);
      this.dispatch("tryon:error", { code: code, message: message, status: job.status });
      // A failed job is finished with: the next open starts afresh.
      this.job = null;
      this.remember();
    }
  };

  Widget.prototype.showProgress = function (status) {
    var text = this.messages[status] || this.messages.pending;
    var element = this.find("[data-tryon-progress-text]");
    if (element.textContent !== text) {
      element.textContent = text;
      this.announce(text);
    }
    this.show("progress");
    this.startTicking();
  };

  Widget.prototype.startTicking = function () {
    var self = this;
    var element = this.find("[data-tryon-elapsed]");
    var tick = function () {
      if (self.job) {
        element.textContent = self.messages.elapsed.replace(
          "{elapsed}",
          formatElapsed(Date.now() - self.job.startedAt)
        );
      }
    };
    tick();
    if (!this.tickTimer) {
      this.tickTimer = window.setInterval(tick, 1000);
    }
  };

  Widget.prototype.stopTicking = function () {
    if (this.tickTimer) {
      window.clearInterval(this.tickTimer);
      this.tickTimer = null;
    }
  };

  Widget.prototype.schedulePoll = function () {
    var self = this;
    this.stopPolling();
    if (!this.dialog.open || !this.job) {
      return;
    }
    var delay = this.pollDelay;
    this.pollDelay = Math.min(POLL_MAX_MS, Math.round(this.pollDelay * POLL_GROWTH));
    this.pollTimer = window.setTimeout(function () {
      self.pollTimer = null;
      self.poll();
    }, delay);
  };

  Widget.prototype.stopPolling = function () {
    if (this.pollTimer) {
      window.clearTimeout(this.pollTimer);
      this.pollTimer = null;
    }
    this.stopTicking();
  };

  Widget.prototype.poll = function () {
    var self = this;
    if (!this.job || !this.dialog.open) {
      return;
    }
    var generation = this.generation;
    fetch(this.jobUrl(this.job.id), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return readJson(response).then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        });
      })
      .then(
        function (answer) {
          if (generation !== self.generation || !self.job) {
            return;
          }
          if (answer.ok && answer.body && answer.body.status) {
            self.update(answer.body);
          } else if (answer.status === 404 || answer.status === 403 || answer.status === 410) {
            // The job was erased, or belongs to another session: nothing to wait for.
            var message = errorMessage(answer.body, self.messages.gone);
            self.dispatch("tryon:error", { code: errorCode(answer.body) || "not_found", message: message });
            self.job = null;
            self.remember();
            self.showFailure(message);
          } else {
            self.schedulePoll(); // A passing server fault: keep asking, less often.
          }
        },
        function () {
          if (generation === self.generation && self.job) {
            self.schedulePoll(); // Offline for a moment: keep asking, less often.
          }
        }
      );
  };

  /* Endings ---------------------------------------------------------------------------------- */

  Widget.prototype.showResult = function (job) {
    var image = this.find("[data-tryon-result-image]");
    image.src = job.result_url;
    this.find("[data-tryon-download]").href = job.result_url;
    this.clearDeleteErrors();
    this.show("result");
    this.announce(this.messages.succeeded);
    this.dispatch("tryon:success", { resultUrl: job.result_url, reused: !!job.reused });
  };

  Widget.prototype.showFailure = function (message) {
    this.find("[data-tryon-failure-text]").textContent = message;
    // Without the photo (after a reload) trying again means choosing one again.
    this.find("[data-tryon-retry]").hidden = !this.file;
    this.show("failure");
    this.announce(message);
  };

  /* Back to the start: a new photo, a new job. */
  Widget.prototype.reset = function () {
    this.generation++;
    this.stopPolling();
    this.job = null;
    this.remember();
    this.setPreview(null);
    var consent = this.find("[data-tryon-consent]");
    if (consent) {
      consent.checked = false;
    }
    this.setMessage("[data-tryon-error]", "");
    this.setMessage("[data-tryon-notice]", "");
    this.clearDeleteErrors();
    this.show("pick");
  };

  /* Erase the job's photos on the server (a running job is canceled too). */
  Widget.prototype.erase = function (button) {
    var self = this;
    if (!this.job) {
      this.reset();
      return;
    }
    button.disabled = true;
    this.clearDeleteErrors();
    // No poll may report "canceled" while the erasing is under way.
    this.generation++;
    this.stopPolling();
    this.announce(this.messages.deleting);
    fetch(this.jobUrl(this.job.id), {
      method: "DELETE",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": this.csrfToken() },
    })
      .then(
        function (response) {
          // 404: already erased, which is what the shopper asked for.
          if (response.ok || response.status === 404) {
            self.reset();
            self.setMessage("[data-tryon-notice]", self.messages.deleted);
            self.announce(self.messages.deleted);
            return null;
          }
          return readJson(response).then(function (body) {
            self.deleteFailed(errorMessage(body, self.messages.deleteFailed));
          });
        },
        function () {
          self.deleteFailed(self.messages.network);
        }
      )
      .then(function () {
        button.disabled = false;
      });
  };

  Widget.prototype.deleteFailed = function (message) {
    if (this.step === "progress") {
      this.startTicking();
      this.schedulePoll();
    }
    var element = this.find('[data-tryon-step="' + this.step + '"] [data-tryon-delete-error]');
    if (element) {
      element.textContent = message;
      element.hidden = false;
    }
    this.announce(message);
  };

  Widget.prototype.clearDeleteErrors = function () {
    this.findAll("[data-tryon-delete-error]").forEach(function (element) {
      element.textContent = "";
      element.hidden = true;
    });
  };

  /* After a reload: pick up the job this tab was following. */
  Widget.prototype.resume = function () {
    var stored = readStored(this.storageKey);
    if (!stored || typeof stored.jobId !== "string") {
      return;
    }
    this.job = {
      id: stored.jobId,
      startedAt: typeof stored.startedAt === "number" ? stored.startedAt : Date.now(),
      status: null,
    };
    if (stored.open && !reopenedGarments[this.garmentId]) {
      reopenedGarments[this.garmentId] = true;
      this.open();
    }
  };

  /* Set up every widget in scope (an element or the document), the scope itself included. */
  function init(scope) {
    scope = scope || document;
    var roots = Array.prototype.slice.call(scope.querySelectorAll("[data-tryon]"));
    if (scope.matches && scope.matches("[data-tryon]")) {
      roots.unshift(scope);
    }
    roots.forEach(function (root) {
      if (root.tryonWidget) {
        return;
      }
      try {
        root.tryonWidget = new Widget(root);
      } catch (error) {
        // One broken widget (say, an overridden template missing a part) leaves the others working.
        root.tryonWidget = null;
        if (window.console) {
          window.console.error("django-tryon: this widget could not start", root, error);
        }
      }
    });
  }

  window.DjangoTryOn = { init: init };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      init(document);
    });
  } else {
    init(document);
  }
})();
