"""Small apps the end-to-end tests serve with real uwsgi and gunicorn processes."""
