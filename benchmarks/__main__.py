from .overhead import main

main()
