from orchestrate.cli.app import main

main()
