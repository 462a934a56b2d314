// The program of the layer link checks (core/CMakeLists.txt): each links one
// core layer whole with only the layers below it, so a call from that layer
// into a higher one is an undefined symbol and the build fails.
int main()
{
    return 0;
}
