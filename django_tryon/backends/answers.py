"""Reading a provider's answer: bounded in size, and in doubt when it cannot be read.

Once a request has left, an answer that cannot be read says nothing of what
the provider did: cut off, larger than any answer of the provider's, not
JSON, nested too deep for the parser (``RecursionError``), in an encoding
that does not decode, or any other failure while parsing. For a submit, the
provider may have created a paid task all the same, so the error raised is
an :class:`~django_tryon.backends.base.InvalidResponseError` with
``in_doubt`` set, and the worker does not submit the job again (see
``RESUBMIT_INTERRUPTED``).

The response must have been requested with ``stream=True``, so that no more
than the cap is ever read into memory.
"""

import json

import requests

from .base import InvalidResponseError

#: The most of one answer read into memory: a provider's JSON answers are a few
#: hundred bytes; a provider that returns pictures inline passes its own cap.
MAX_ANSWER_BYTES = 1024 * 1024
CHUNK_SIZE = 64 * 1024


def read_answer_body(response, *, provider, in_doubt, max_bytes=MAX_ANSWER_BYTES):
    """The body of a streamed ``response``, at most ``max_bytes``; raises an
    :class:`InvalidResponseError` (``in_doubt`` as given) when it cannot be had.

    The body is kept on the response too (``response.content``), and the
    connection goes back to its pool once read to the end.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise _unreadable(
            response,
            f"The provider's answer is {declared} bytes, over {max_bytes}.",
            provider,
            in_doubt,
        )
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            size += len(chunk)
            if size > max_bytes:
                response.close()  # the rest is never read: the connection goes
                raise _unreadable(
                    response,
                    f"The provider's answer is over {max_bytes} bytes.",
                    provider,
                    in_doubt,
                )
            chunks.append(chunk)
    except requests.exceptions.RequestException as err:
        response.close()
        raise _unreadable(response, "The provider's answer broke off.", provider, in_doubt) from err
    body = b"".join(chunks)
    response._content = body  # what response.content and .json() read from now on
    response._content_consumed = True
    return body


def read_json_answer(response, *, provider, in_doubt, max_bytes=MAX_ANSWER_BYTES):
    """The JSON value of a streamed ``response`` (see :func:`read_answer_body`).

    Any failure to parse it, whatever the exception, raises an
    :class:`InvalidResponseError` with ``in_doubt`` as given.
    """
    body = read_answer_body(response, provider=provider, in_doubt=in_doubt, max_bytes=max_bytes)
    try:
        return json.loads(body)  # bytes: UTF-8, -16 or -32, as JSON allows
    except Exception as err:  # RecursionError, UnicodeDecodeError, ValueError, ...
        raise _unreadable(
            response,
            f"The provider's answer is not readable JSON ({type(err).__name__}).",
            provider,
            in_doubt,
        ) from err


def _unreadable(response, message, provider, in_doubt):
    return InvalidResponseError(
        message,
        provider=provider,
        status_code=response.status_code,
        response=response,
        in_doubt=in_doubt,
    )
