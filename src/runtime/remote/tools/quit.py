# Quit: ends the interpreter cleanly once this call's result is sent (stage 1's rt.quit): what still
# runs is cancelled, its process groups killed, as when the local side closes the connection.


def quit(cx):
    rt.quit()
    return {'pid': __import__('os').getpid()}
