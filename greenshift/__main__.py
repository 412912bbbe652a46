from greenshift.cli.main import main

main()
