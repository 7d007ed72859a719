import typer

users_app = typer.Typer(help="Manage console users.", no_args_is_help=True)
