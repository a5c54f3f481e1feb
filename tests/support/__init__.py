"""Helpers and fakes shared by the tests; test modules and conftests import from here.

- ``api``: the shopper API's URLs, uploads and error checks.
- ``browser``: the Try it on dialog in a Playwright page.
- ``collection``: folders of tests that run only when named on the command line.
- ``concurrent_shoppers``: shoppers who press "Try it on" at the same instant.
- ``console``: the docs' console blocks, their commands and expected output.
- ``contract``: the providers' documented requests and answers.
- ``fake_provider``: a scripted provider on loopback.
- ``images``: image files, good and bad.
- ``jobs``: pending jobs in bulk, read again, unchanged, or run until final.
- ``loopback``: a real HTTP server on 127.0.0.1.
- ``media``: what a storage folder holds.
- ``oscar_catalogue``: Oscar catalogue rows, made as staff would.
- ``processes``: the real processes of the end-to-end tests.
- ``receiver``: a shop's webhook endpoint on loopback.
- ``recording`` and ``recording_sandbox``: a backend and a sandbox that write down
  every call, to tell several workers apart.
- ``samples``: the sandbox's drawn samples, as the tests use them.
- ``sandbox_client``: raw requests to the sandbox provider.
- ``templatetag``: rendering ``{% tryon_button %}``.
- ``threads``: a pass on another thread, and waiting with a deadline.
- ``webhooks``: webhook addresses.
"""
