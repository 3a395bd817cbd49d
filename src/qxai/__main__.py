from qxai.cli.main import main

main()
