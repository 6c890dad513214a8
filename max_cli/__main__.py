from max_cli.main import run

run()
