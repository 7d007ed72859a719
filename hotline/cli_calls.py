import typer

calls_app = typer.Typer(help="Call records.", no_args_is_help=True)
