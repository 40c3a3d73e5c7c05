"""The helpdesk portal (`bitkey-dir serve`): agents sign in with their own directory account
and look keys up in a browser, through the same Client and operations as the command line.

Needs the ``portal`` extra (starlette, uvicorn, jinja2, python-multipart); only
``bitkey_dir.cli.serve`` imports this package, so the command line never loads a web stack.
"""
