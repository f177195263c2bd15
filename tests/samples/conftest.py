# The sample projects are test *subjects*: their tests run only inside the copies
# made by tests/samples/capture.py and tests/integration/test_check_tools.py.
collect_ignore_glob = ["*"]
