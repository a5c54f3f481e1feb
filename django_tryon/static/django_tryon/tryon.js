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

  // The job JSON says when to ask again (check_again_in, from the worker's own
  // plan), within these bounds. Without it (a passing fault, an older server):
  // our own clock, soon after sending, then less and less often. Following the
  // server, the n-th read of a job never comes sooner than the clock's n-th, so
  // a job never costs the shop more reads than on the clock; except where the
  // answer says its time is planned (check_again_planned: a provider that pushes
  // its end), which the server keeps within the clock's reads per job on average.
  var CHECK_MIN_MS = 100;
  var CHECK_MAX_MS = 10000;
  var CLOCK_FIRST_MS = 1000;
  var CLOCK_MAX_MS = 5000;
  var CLOCK_GROWTH = 1.5;
  // The photo is sent as a JPEG of the intake's size: about 0.5 MB for a phone's
  // 12 MP photo, at most this many bytes (lower qualities are tried past it).
  var JPEG_QUALITIES = [0.85, 0.75, 0.65, 0.55];
  var UPLOAD_TARGET_BYTES = 1200000;
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

  /* Milliseconds after sending at which our own clock makes its ``n``-th read (n >= 1). */
  function clockRead(n) {
    var at = 0;
    var interval = CLOCK_FIRST_MS;
    for (var i = 0; i < n; i++) {
      at += interval;
      interval = Math.min(CLOCK_MAX_MS, Math.round(interval * CLOCK_GROWTH));
    }
    return at;
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

  /* The one way to call the shopper API: JSON answers, the CSRF token on writes.
     Resolves to {ok, status, body}; a network fault is status 0, never a rejection. */
  function request(method, url, options) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["X-CSRFToken"] = options.csrfToken;
    }
    return fetch(url, {
      method: method,
      body: options.body,
      credentials: "same-origin",
      headers: headers,
    }).then(
      function (response) {
        return readJson(response).then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        });
      },
      function () {
        return { ok: false, status: 0, body: null };
      }
    );
  }

  /* What a refused answer says to the shopper: {code, message}. */
  function problemOf(answer, messages, fallback) {
    if (answer.status === 0) {
      return { code: "network", message: messages.network };
    }
    return { code: errorCode(answer.body), message: errorMessage(answer.body, fallback) };
  }

  /* Photo preparation ------------------------------------------------------------------- */

  /* The photo decoded upright (EXIF orientation applied): {image, width, height, close}.
     Rejects when this browser cannot decode it (HEIC in most, or not a picture). */
  function decodePhoto(file) {
    var viaElement = function () {
      return new Promise(function (resolve, reject) {
        var url = URL.createObjectURL(file);
        var image = new Image();
        image.onload = function () {
          resolve({
            image: image,
            width: image.naturalWidth,
            height: image.naturalHeight,
            close: function () {
              URL.revokeObjectURL(url);
            },
          });
        };
        image.onerror = function () {
          URL.revokeObjectURL(url);
          reject(new Error("undecodable"));
        };
        image.src = url;
      });
    };
    if (!window.createImageBitmap) {
      return viaElement();
    }
    // A browser that knows createImageBitmap but not this option refuses the call:
    // an <img> then decodes it, upright in every browser that lacks the option.
    return window.createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
      return {
        image: bitmap,
        width: bitmap.width,
        height: bitmap.height,
        close: function () {
          bitmap.close();
        },
      };
    }, viaElement);
  }

  /* ``photo`` drawn at ``scale`` as a JPEG, on white (a transparent PNG is not black). */
  function encodeJpeg(photo, scale, quality) {
    var canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(photo.width * scale));
    canvas.height = Math.max(1, Math.round(photo.height * scale));
    var context = canvas.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.imageSmoothingQuality = "high";
    context.drawImage(photo.image, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve, reject) {
      canvas.toBlob(
        function (blob) {
          return blob ? resolve(blob) : reject(new Error("not encoded"));
        },
        "image/jpeg",
        quality
      );
    });
  }

  /* The first quality whose JPEG fits the upload target (the last one else). */
  function encodeWithin(photo, scale, qualities) {
    return encodeJpeg(photo, scale, qualities[0]).then(function (blob) {
      if (blob.size <= UPLOAD_TARGET_BYTES || qualities.length === 1) {
        return blob;
      }
      return encodeWithin(photo, scale, qualities.slice(1));
    });
  }

  /* The scale that brings the longer side to ``maxSide``, never the shorter one below
     ``minSide`` (a narrow picture the intake would then refuse), never upwards. */
  function scaleFor(width, height, maxSide, minSide) {
    var scale = Math.min(1, maxSide / Math.max(width, height));
    return Math.max(scale, Math.min(1, minSide / Math.min(width, height)));
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
    this.workingStatuses = this.config.statuses.working;
    this.step = "pick";
    this.photo = null; // {file, blob (what is sent), ready (a promise of blob)}
    this.model = null; // {id, name}: one of the shop's model photos, instead of a photo
    this.previewUrl = null;
    this.job = null; // {id, startedAt, status, reads (job reads this tab made)}
    this.generation = 0; // bumped on reset: answers for an older job are ignored
    this.retryReloads = false; // "Try again" loads the result again, not a new job
    this.pollTimer = null;
    this.unguidedDelay = CLOCK_FIRST_MS;
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
    this.bindModels();
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

  Widget.prototype.request = function (method, url, body) {
    var input = this.form.querySelector('input[name="csrfmiddlewaretoken"]');
    return request(method, url, { body: body, csrfToken: input ? input.value : "" });
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
      this.unguidedDelay = CLOCK_FIRST_MS;
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

  /* The intake's checks of a file as a browser can make them before decoding it: same
     words as the server. ``original``: whether the file itself would be sent. */
  Widget.prototype.check = function (file, original) {
    var messages = this.messages;
    if (file.size === 0) {
      return { code: "empty_file", message: messages.empty };
    }
    if (original && file.size > this.config.maxUploadBytes) {
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

  /* A photo was chosen: judge it now, and make what will be sent while the shopper
     reads and ticks the box. */
  Widget.prototype.choose = function (file) {
    var self = this;
    this.clearModel();
    var problem = this.check(file, false);
    if (problem) {
      this.refuse(problem);
      return;
    }
    this.setMessage("[data-tryon-error]", "");
    this.setMessage("[data-tryon-notice]", "");
    var photo = { file: file, blob: null, ready: null };
    this.photo = photo;
    photo.ready = this.prepare(file).then(
      function (blob) {
        if (self.photo !== photo) {
          return null;
        }
        photo.blob = blob;
        self.setPreview(photo);
        self.announce(self.messages.photoChosen);
        return blob;
      },
      function (refusal) {
        if (self.photo === photo) {
          self.photo = null;
          self.refuse(refusal);
        }
        return null;
      }
    );
  };

  /* What to send for ``file``: a JPEG of at most the intake's size, upright, without
     metadata; the file itself when this browser cannot decode it but the shop can
     (HEIC). Rejects with the intake's {code, message} for a file the shop would refuse. */
  Widget.prototype.prepare = function (file) {
    var self = this;
    var config = this.config;
    var messages = this.messages;
    return decodePhoto(file).then(
      function (photo) {
        var width = photo.width;
        var height = photo.height;
        if (Math.min(width, height) < config.minImageSide) {
          photo.close();
          throw {
            code: "too_small",
            message: messages.tooSmall.replace("{width}", width).replace("{height}", height),
          };
        }
        var scale = scaleFor(width, height, config.intakeMaxSide, config.minImageSide);
        var encoded = encodeWithin(photo, scale, JPEG_QUALITIES);
        var closed = function () {
          photo.close();
        };
        encoded.then(closed, closed);
        return encoded.then(function (blob) {
          if (blob.size > config.maxUploadBytes) {
            throw { code: "too_large_upload", message: messages.tooLarge };
          }
          return blob;
        });
      },
      function () {
        var problem = self.check(file, true);
        if (problem) {
          throw problem;
        }
        if (config.sendAsIsTypes.indexOf(file.type) === -1) {
          // A JPEG, PNG or WebP this browser cannot read is broken: the shop could not either.
          throw { code: "not_an_image", message: messages.notAnImage };
        }
        return file;
      }
    );
  };

  /* The preview of what will be sent (none for a file this browser cannot show). */
  Widget.prototype.setPreview = function (photo) {
    if (this.previewUrl) {
      URL.revokeObjectURL(this.previewUrl);
      this.previewUrl = null;
    }
    var preview = this.find("[data-tryon-preview]");
    var image = this.find("[data-tryon-preview-image]");
    var progressPhoto = this.find("[data-tryon-progress-photo]");
    var shown = !!photo && photo.blob !== photo.file;
    if (shown) {
      this.previewUrl = URL.createObjectURL(photo.blob);
      image.src = this.previewUrl;
      progressPhoto.src = this.previewUrl;
    } else {
      image.removeAttribute("src");
      progressPhoto.removeAttribute("src");
    }
    preview.hidden = !shown;
    progressPhoto.hidden = !shown;
    this.find("[data-tryon-choose-text]").hidden = !!photo;
    this.find("[data-tryon-change-text]").hidden = !photo;
  };

  /* Sending and following a job ----------------------------------------------------------- */

  Widget.prototype.submit = function () {
    if (this.model) {
      this.send();
      return;
    }
    if (!this.photo) {
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
    if (this.retryReloads && this.job) {
      this.showProgress(this.job.status);
      this.poll();
    } else if (this.photo || this.model) {
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
    var photo = this.photo;
    var consent = this.find("[data-tryon-consent]");
    var generation = ++this.generation;
    this.sending = true;
    this.setBusy(true);
    this.announce(this.messages.sending);
    var modelData = this.modelFormData();
    (modelData ? Promise.resolve(modelData) : photo.ready)
      .then(function (blob) {
        if (!blob || generation !== self.generation) {
          return null; // refused meanwhile (said so), or the widget was reset
        }
        var data = modelData;
        if (!data) {
          data = new FormData();
          data.append("garment", String(self.garmentId));
          data.append("person_image", blob, blob === photo.file ? photo.file.name : "photo.jpg");
          data.append("consent", consent && consent.checked ? "true" : "false");
        }
        return self.request("POST", self.config.jobsUrl, data).then(function (answer) {
          if (generation !== self.generation) {
            return;
          }
          if (answer.ok && answer.body && answer.body.id) {
            self.start(answer.body);
          } else {
            self.refused(problemOf(answer, self.messages, self.messages.failed));
          }
        });
      })
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
  Widget.prototype.refused = function (problem) {
    if (this.step === "pick") {
      this.showError(problem.message);
    } else {
      this.showFailure(problem.message);
    }
    this.dispatch("tryon:error", { code: problem.code, message: problem.message });
  };

  Widget.prototype.start = function (job) {
    this.job = { id: job.id, startedAt: Date.now(), status: job.status, reads: 0 };
    this.remember();
    this.dispatch("tryon:submit", { status: job.status, reused: !!job.reused });
    this.unguidedDelay = CLOCK_FIRST_MS;
    this.update(job);
  };

  Widget.prototype.update = function (job) {
    this.job.status = job.status;
    this.markModelJob(job);
    if (this.workingStatuses.indexOf(job.status) !== -1) {
      this.showProgress(job.status);
      this.schedulePoll(job.check_again_in, job.check_again_planned === true);
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

  /* Ask again when the server said the job may have changed (seconds), else on our own
     clock, less and less often. A planned time is followed as said; any other, no
     sooner than our clock's read of the same rank. */
  Widget.prototype.schedulePoll = function (checkAgainIn, planned) {
    var self = this;
    this.stopPolling();
    if (!this.dialog.open || !this.job) {
      return;
    }
    var delay;
    if (typeof checkAgainIn === "number" && isFinite(checkAgainIn)) {
      delay = Math.min(CHECK_MAX_MS, Math.max(CHECK_MIN_MS, checkAgainIn * 1000));
      if (!planned) {
        var onOurClock = this.job.startedAt + clockRead(this.job.reads + 1) - Date.now();
        delay = Math.max(delay, onOurClock);
      }
    } else {
      delay = this.unguidedDelay;
      this.unguidedDelay = Math.min(CLOCK_MAX_MS, Math.round(delay * CLOCK_GROWTH));
    }
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
    this.job.reads++;
    this.request("GET", this.jobUrl(this.job.id)).then(function (answer) {
      if (generation !== self.generation || !self.job) {
        return;
      }
      if (answer.ok && answer.body && answer.body.status) {
        self.update(answer.body);
      } else if (answer.status === 404 || answer.status === 403 || answer.status === 410) {
        // The job was erased, or belongs to another session: nothing to wait for.
        var problem = problemOf(answer, self.messages, self.messages.gone);
        self.dispatch("tryon:error", { code: problem.code || "not_found", message: problem.message });
        self.job = null;
        self.remember();
        self.showFailure(problem.message);
      } else {
        // A passing server fault, or offline for a moment: keep asking, less often.
        self.schedulePoll(null);
      }
    });
  };

  /* Endings ---------------------------------------------------------------------------------- */

  /* The result step appears once the picture has loaded: "ready" is never said over a
     picture that is not there. */
  Widget.prototype.showResult = function (job) {
    var self = this;
    var generation = this.generation;
    var image = this.find("[data-tryon-result-image]");
    image.onload = function () {
      if (generation === self.generation && self.job && self.job.id === job.id) {
        self.resultShown(job);
      }
    };
    image.onerror = function () {
      if (generation === self.generation && self.job && self.job.id === job.id) {
        self.showFailure(self.messages.resultFailed, true);
        self.dispatch("tryon:error", { code: "result_not_loaded", message: self.messages.resultFailed });
      }
    };
    image.src = job.result_url;
  };

  Widget.prototype.resultShown = function (job) {
    this.find("[data-tryon-download]").href = job.result_url;
    this.clearDeleteErrors();
    this.show("result");
    this.announce(this.messages.succeeded);
    this.dispatch("tryon:success", { resultUrl: job.result_url, reused: !!job.reused });
  };

  /* ``reloads``: "Try again" loads the job's result again (no new job, no new charge). */
  Widget.prototype.showFailure = function (message, reloads) {
    this.retryReloads = !!reloads;
    this.find("[data-tryon-failure-text]").textContent = message;
    // Without the photo (after a reload) trying again means choosing one again.
    this.find("[data-tryon-retry]").hidden = !reloads && !this.photo && !this.model;
    this.show("failure");
    this.announce(message);
  };

  /* Back to the start: a new photo, a new job. */
  Widget.prototype.reset = function () {
    this.generation++;
    this.stopPolling();
    this.job = null;
    this.remember();
    this.photo = null;
    this.setPreview(null);
    this.clearModel();
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
    this.request("DELETE", this.jobUrl(this.job.id)).then(function (answer) {
      button.disabled = false;
      // 404: already erased, which is what the shopper asked for.
      if (answer.ok || answer.status === 404) {
        var done = self.erasedMessage();
        self.reset();
        self.setMessage("[data-tryon-notice]", done);
        self.announce(done);
      } else {
        self.deleteFailed(problemOf(answer, self.messages, self.messages.deleteFailed).message);
      }
    });
  };

  Widget.prototype.deleteFailed = function (message) {
    if (this.step === "progress") {
      this.startTicking();
      this.schedulePoll(null);
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

  /* The shop's model photos --------------------------------------------------------------- */

  /* A model photo may be picked instead of a photo of the shopper's own: nothing of
     theirs is sent, so no consent is asked, and the picture is the shop's. */
  Widget.prototype.bindModels = function () {
    var self = this;
    this.findAll("[data-tryon-model]").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.checked) {
          self.chooseModel(input);
        }
      });
    });
  };

  Widget.prototype.chooseModel = function (input) {
    this.photo = null; // the shopper's own photo, if any, is not sent
    this.setPreview(null);
    this.model = { id: input.value, name: this.modelName(input.value) };
    // The model waits beside the spinner as the shopper's own photo would.
    var picture = input.parentNode.querySelector("img");
    var progressPhoto = this.find("[data-tryon-progress-photo]");
    if (picture) {
      progressPhoto.src = picture.currentSrc || picture.src;
      progressPhoto.hidden = false;
    }
    this.setMessage("[data-tryon-error]", "");
    this.setMessage("[data-tryon-notice]", "");
    this.showModelChoice();
    this.announce(this.messages.modelChosen.replace("{name}", this.model.name));
  };

  /* Back to the shopper's own photo: a file was chosen, or the dialog starts afresh. */
  Widget.prototype.clearModel = function () {
    this.model = null;
    this.findAll("[data-tryon-model]").forEach(function (input) {
      input.checked = false;
    });
    this.showModelChoice();
  };

  /* The consent box and the send button's words follow what will be sent. */
  Widget.prototype.showModelChoice = function () {
    var picked = !!this.model;
    [
      ["[data-tryon-consent-block]", picked],
      ["[data-tryon-submit-own]", picked],
      ["[data-tryon-submit-model]", !picked],
    ].forEach(function (pair) {
      var element = this.find(pair[0]);
      if (element) {
        element.hidden = pair[1];
      }
    }, this);
  };

  Widget.prototype.modelName = function (id) {
    var input = this.findAll("[data-tryon-model]").filter(function (candidate) {
      return candidate.value === String(id);
    })[0];
    var name = input && input.parentNode.querySelector("[data-tryon-model-name]");
    return name ? name.textContent.trim() : "";
  };

  /* The request of a model photo: its id, no photo, no consent (null for the shopper's
     own photo). */
  Widget.prototype.modelFormData = function () {
    if (!this.model) {
      return null;
    }
    var data = new FormData();
    data.append("garment", String(this.garmentId));
    data.append("model_photo", this.model.id);
    return data;
  };

  /* A job of a model photo holds nothing of the shopper's: the result's picture is
     described as the model's, and leaving the job is a cancel, not a deletion. */
  Widget.prototype.markModelJob = function (job) {
    var modelPhoto = job.model_photo === undefined ? null : job.model_photo;
    this.job.modelPhoto = modelPhoto;
    var image = this.find("[data-tryon-result-image]");
    if (image.tryonOwnAlt === undefined) {
      image.tryonOwnAlt = image.alt;
    }
    image.alt =
      modelPhoto === null
        ? image.tryonOwnAlt
        : this.messages.modelResult.replace("{name}", this.modelName(modelPhoto));
    var messages = this.messages;
    this.findAll("[data-tryon-delete]").forEach(function (button) {
      if (button.tryonOwnText === undefined) {
        button.tryonOwnText = button.textContent;
      }
      var inResult = !!button.closest('[data-tryon-step="result"]');
      button.textContent = modelPhoto === null ? button.tryonOwnText : messages.cancel;
      button.hidden = modelPhoto !== null && inResult;
    });
  };

  /* What the shopper reads once the job is erased (or, for a model's, left). */
  Widget.prototype.erasedMessage = function () {
    return this.job && this.job.modelPhoto != null ? this.messages.canceled : this.messages.deleted;
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
      reads: 0,
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
