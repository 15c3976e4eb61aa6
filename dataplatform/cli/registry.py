"""``dataplatform registry``: run the platform's Confluent-compatible schema registry."""

from __future__ import annotations

import typer

from dataplatform.config import get_settings, shown_url

app = typer.Typer(help="The platform's Confluent-compatible schema registry (served by the web service).",
                  no_args_is_help=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on: 127.0.0.1 is this machine only; "
                             "0.0.0.0 opens it to the network (set API_WRITE_TOKEN and API_READ_TOKEN first)."),
    port: int = typer.Option(8081, "--port", help="Port to listen on (Confluent's default is 8081)."),
    database_url: str = typer.Option(None, "--database-url",
                                     help="SQLAlchemy URL (default: DATABASE_URL, else SQLite in DATAPLATFORM_HOME)."),
) -> None:
    """Serve the web service until Ctrl-C: schema registry at the root, catalogue at
    /catalogue, live warnings at /warnings (when KAFKA_BOOTSTRAP_SERVERS is set), API docs at /docs."""
    from dataplatform.web.server import serve as serve_web

    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    typer.echo(f"Web service http://{host}:{port}  (registry at the root, /catalogue, /warnings; database {shown_url(settings.effective_database_url)})", err=True)
    serve_web(host, port, settings)
