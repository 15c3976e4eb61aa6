from dataplatform.cli import app

app()
