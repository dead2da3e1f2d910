"""The examples of the user's document, verbatim."""

TIMEOUT = "Execution timeout. Session terminated."
MEMORY = "Memory limit exceeded. Session terminated."


def test_execute_hello_world(client):
    body = client.run("print('Hello, World!')")
    assert body == {"id": body["id"], "stdout": "Hello, World!\n"}


def test_optional_session_id(client):
    sid = client.run("print('Hello, World!')")["id"]
    body = client.post({"code": "print('Hello, World!')", "id": sid}).json()
    assert body == {"id": sid, "stdout": "Hello, World!\n"}


def test_blocked_code(client):
    body = client.run('import os\nos.system("rm -rf /")  # \u274c Not Allowed!')
    assert body["stderr"].startswith("Traceback (most recent call last):\n")
    assert body["stderr"].endswith(
        "PermissionError: Importing 'os' is restricted.\n")


def test_infinite_loop(client):
    body = client.run("while True: pass")
    assert body == {"id": body["id"], "error": TIMEOUT}


def test_exceeding_memory_limit(client):
    body = client.run('a = " " * 1024 * 1024 * 200  # Allocate 200MB')
    assert body == {"id": body["id"], "error": MEMORY}
