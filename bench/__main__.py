import sys

if sys.argv[1:2] in (["writes"], ["storm"]):
    from bench.writes import main

    main(sys.argv[1:])
else:
    from bench.run import main

    main()
