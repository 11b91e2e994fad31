"""`pocketvec app serve`: the browser sample app on localhost with a model and a gallery."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketvec.cli import ranged

app = typer.Typer(help="The browser sample app (sample_app/). Example: pocketvec app serve --model model.onnx",
                  no_args_is_help=True)


@app.command("serve")
def serve_command(
    model: Path = typer.Option(..., "--model", help="Exported ONNX model (int8 recommended)."),
    gallery: Path | None = typer.Option(None, "--gallery", help="Gallery file (.pvg) made with this model."),
    port: int = ranged.option(8000, "--port", key="port", help="Port on localhost (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 to reach it from a phone)."),
    app_dir: Path | None = typer.Option(None, "--app-dir", help="The sample_app folder (default: the installed "
                                        "one, else the repository's)."),
    text: bool = typer.Option(True, "--text/--no-text", help="Serve the OCR models of the pocketvec\\[text] extra "
                              "(when installed): the page verifies a gallery that keeps printed text by reading "
                              "the photo's (--no-text: by the image alone)."),
) -> None:
    """Serve the on-device matcher app with MODEL and GALLERY; prints the URL, Ctrl-C stops.

    Example: pocketvec app serve --model runs/demo/model.int8.onnx --gallery gallery.pvg --port 8000
    """
    from pocketvec.app_server import make_server, server_urls

    server = make_server(model, gallery, port=port, host=host, app_dir=app_dir, text=text)
    from .output import console, safe

    console.print(f"pocketvec app: {safe('  '.join(server_urls(server)))}  (model {safe(model)}, "
                  f"gallery {safe(gallery or 'none')})", highlight=False)
    console.print("Phones need https or localhost for the camera; Ctrl-C stops.", style="dim")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
